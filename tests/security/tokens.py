"""Bearer tokens that must all be refused: expired, forged, mis-addressed, unsigned, tampered."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from services.common.security import ROLE_SCOPES, Principal, issue_token
from services.common.settings import Settings

ADMIN = Principal(subject="intruder", kind="user", role="admin",
                  scopes=frozenset(ROLE_SCOPES["admin"]))


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    """Every claim a real token carries, for a principal holding every scope there is."""
    now = int(datetime.now(UTC).timestamp())
    every_scope = sorted({s for scopes in ROLE_SCOPES.values() for s in scopes}
                         | {"incidents:write"})
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": "intruder",
        "iat": now, "nbf": now - 5, "exp": now + 600, "jti": secrets.token_hex(8),
        "kind": "user", "role": "admin", "scope": " ".join(every_scope),
        "force": "WMP", "schools": [], "las": [],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(settings: Settings, claims: dict[str, Any], algorithm: str = "HS256") -> str:
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=algorithm)


def _tampered(settings: Settings, genuine: str) -> str:
    """A genuine token whose payload is swapped for an all-powerful one, signature kept."""
    header, _, signature = genuine.split(".")
    return f"{header}.{_b64(_claims(settings))}.{signature}"


def bad_tokens(settings: Settings, genuine: str) -> dict[str, str]:
    """Name → a token every protected route must answer with 401."""
    other = settings.model_copy(update={"jwt_secret": type(settings.jwt_secret)(
        secrets.token_hex(32))})
    expired, _ = issue_token(settings, ADMIN, now=datetime.now(UTC) - timedelta(hours=13))
    return {
        "expired": expired,
        "forged (another key)": issue_token(other, ADMIN, now=datetime.now(UTC))[0],
        "wrong audience": _signed(settings, _claims(settings, aud="someone-else")),
        "wrong issuer": _signed(settings, _claims(settings, iss="https://evil.example")),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(settings))}.",
        "alg HS512": _signed(settings, _claims(settings), algorithm="HS512"),
        "tampered payload": _tampered(settings, genuine),
        "no expiry": _signed(settings, _claims(settings, exp=None)),
        "not yet valid": _signed(settings, _claims(
            settings, nbf=int(datetime.now(UTC).timestamp()) + 3600)),
        "no kind": _signed(settings, _claims(settings, kind=None)),
        "garbage": "not-a-jwt",
        "empty signature": genuine.rsplit(".", 1)[0] + ".",
    }

