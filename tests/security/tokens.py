"""Bearer tokens that must all be refused: expired, forged, mis-addressed, unsigned, tampered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.common.security import ROLE_SCOPES, SERVICES
from services.identity.keys import Keyset
from services.identity.tokens import sign
from tests.support.tokens import ISSUER, KEYSET, mint, person

ADMIN = person("admin", subject="intruder")
STRANGER = Keyset((Ed25519PrivateKey.generate(),))  # a key no service publishes


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _json64(data: dict[str, Any]) -> str:
    return _b64(json.dumps(data, separators=(",", ":")).encode())


def _claims(service: str, **changes: Any) -> dict[str, Any]:
    """Every claim a real token carries, for a principal holding every scope there is."""
    now = int(datetime.now(UTC).timestamp())
    every_scope = sorted({s for scopes in ROLE_SCOPES.values() for s in scopes}
                         | {"incidents:write"})
    claims: dict[str, Any] = {
        "iss": ISSUER, "aud": [service], "sub": "intruder",
        "iat": now, "nbf": now - 5, "exp": now + 600, "jti": secrets.token_hex(8),
        "kind": "user", "role": "admin", "scope": " ".join(every_scope),
        "force": "WMP", "schools": [], "las": [],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _hmac(claims: dict[str, Any], secret: bytes, alg: str) -> str:
    """MACed by hand with our kid: what an attacker holding the public key would try."""
    head = _json64({"alg": alg, "typ": "JWT", "kid": KEYSET.active_kid})
    body = _json64(claims)
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    return f"{head}.{body}.{_b64(hmac.new(secret, f'{head}.{body}'.encode(), digest).digest())}"


def _tampered(service: str, genuine: str) -> str:
    """A genuine token whose payload is swapped for an all-powerful one, signature kept."""
    header, _, signature = genuine.split(".")
    return f"{header}.{_json64(_claims(service))}.{signature}"


def bad_tokens(genuine: str, service: str) -> dict[str, str]:
    """Name → a token every protected route of `service` must answer with 401."""
    public = KEYSET.active.public_key()
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    kid = {"kid": KEYSET.active_kid}
    return {
        "expired": mint(ADMIN, audience=[service],
                        now=datetime.now(UTC) - timedelta(hours=13)),
        "forged (another key)": mint(ADMIN, audience=[service], keyset=STRANGER),
        "forged (another key, our kid)": jwt.encode(
            _claims(service), STRANGER.active, algorithm="EdDSA", headers=kid),
        "wrong audience": sign(_claims(service, aud="someone-else"), KEYSET),
        "every other service's audience": sign(
            _claims(service, aud=[s for s in SERVICES if s != service]), KEYSET),
        "no audience": sign(_claims(service, aud=None), KEYSET),
        "wrong issuer": sign(_claims(service, iss="https://evil.example"), KEYSET),
        "alg none": f"{_json64({'alg': 'none', 'typ': 'JWT', **kid})}."
                    f"{_json64(_claims(service))}.",
        "alg HS256 keyed with the public key": _hmac(_claims(service), pem, "HS256"),
        "alg HS512 keyed with the raw public key": _hmac(
            _claims(service), public.public_bytes(Encoding.Raw, PublicFormat.Raw), "HS512"),
        "tampered payload": _tampered(service, genuine),
        "no expiry": sign(_claims(service, exp=None), KEYSET),
        "not yet valid": sign(_claims(
            service, nbf=int(datetime.now(UTC).timestamp()) + 3600), KEYSET),
        "no kind": sign(_claims(service, kind=None), KEYSET),
        "garbage": "not-a-jwt",
        "empty signature": genuine.rsplit(".", 1)[0] + ".",
    }
