"""Signing, kid selection, rotation, audiences and algorithm confusion, without any service."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from services.common.jwks import KeysUnavailable, TokenVerifier, parse_jwks
from services.common.security import ROLE_AUDIENCES, SERVICES, InvalidToken, Principal
from services.identity.keys import BadSigningKey, Keyset, generate_key, rotated
from services.identity.settings import IdentitySettings
from services.identity.tokens import sign, token_claims
from tests.support.tokens import KEYSET, PREVIOUS, mint, person, police

NOW = datetime.now(UTC)


def verifier(audience: str = "ingest", keyset: Keyset = KEYSET) -> TokenVerifier:
    return TokenVerifier(audience=audience, issuer="daybreak",
                         static=parse_jwks(json.dumps(keyset.jwks())))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hmac_signed(claims: dict[str, Any], secret: bytes, alg: str = "HS256") -> str:
    """A token MACed with `secret` by hand (PyJWT rightly refuses to use a public key so)."""
    header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": KEYSET.active_kid}).encode())
    body = _b64(json.dumps(claims).encode())
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    mac = hmac.new(secret, f"{header}.{body}".encode(), digest).digest()
    return f"{header}.{body}.{_b64(mac)}"


def claims(**changes: Any) -> dict[str, Any]:
    found = token_claims(police(), issuer="daybreak", now=NOW, ttl_s=900) | changes
    return {k: v for k, v in found.items() if v is not None}


PUBLIC = KEYSET.active.public_key()
STRANGER = Keyset((Ed25519PrivateKey.generate(),))
BAD: dict[str, Callable[[], str]] = {
    "expired": lambda: mint(police(), now=NOW - timedelta(hours=2)),
    "wrong-issuer": lambda: mint(police(), issuer="https://evil.example"),
    "another-services-audience": lambda: mint(police(), audience=["notifier"]),
    "no-audience": lambda: sign(claims(aud=None), KEYSET),
    "no-expiry": lambda: sign(claims(exp=None), KEYSET),
    "no-issued-at": lambda: sign(claims(iat=None), KEYSET),
    "no-subject": lambda: sign(claims(sub=None), KEYSET),
    "unknown-kind": lambda: sign(claims(kind="robot"), KEYSET),
    "unknown-key": lambda: mint(police(), keyset=STRANGER),
    "another-key-claiming-our-kid": lambda: jwt.encode(
        claims(), STRANGER.active, algorithm="EdDSA", headers={"kid": KEYSET.active_kid}),
    "no-kid": lambda: jwt.encode(claims(), KEYSET.active, algorithm="EdDSA"),
    "alg-none": lambda: jwt.encode(claims(), None, algorithm="none",
                                   headers={"kid": KEYSET.active_kid}),
    "hs256-with-raw-public-key": lambda: hmac_signed(
        claims(), PUBLIC.public_bytes(Encoding.Raw, PublicFormat.Raw)),
    "hs256-with-pem-public-key": lambda: hmac_signed(
        claims(), PUBLIC.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)),
    "hs512-with-jwk-x": lambda: hmac_signed(claims(), KEYSET.jwks()["keys"][0]["x"].encode(),
                                            "HS512"),
    "tampered-payload": lambda: _tampered(mint(police("GMP"))),
    "garbage": lambda: "not-a-jwt",
}


def _tampered(token: str) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_b64(json.dumps(claims(force='WMP', scope='admin')).encode())}.{signature}"


@pytest.mark.parametrize("make", BAD.values(), ids=BAD.keys())
async def test_bad_tokens_are_refused(make: Callable[[], str]) -> None:
    with pytest.raises(InvalidToken):
        await verifier("ingest").verify(make())


async def test_a_token_is_eddsa_with_the_active_kid_and_the_roles_audience() -> None:
    token = mint(person("la_officer", las=["332"]))
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "typ": "JWT",
                                                "kid": KEYSET.active_kid}
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == ["matcher",
                                                                             "notifier"]
    back = await verifier("notifier").verify(token)
    assert back.la_codes == {"332"} and back.role == "la_officer"


@pytest.mark.parametrize(("role", "audience"), [
    ("police", ["ingest"]), ("dsl", ["notifier"]), ("deputy_dsl", ["notifier"]),
    ("la_officer", ["matcher", "notifier"]), ("auditor", ["audit", "notifier"]),
    ("admin", ["ingest", "matcher", "notifier", "identity"]),
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
async def test_each_role_is_admitted_by_its_services_alone(role: str, audience: list[str]) -> None:
    principal = police() if role == "police" else person(role, schools=["103456"], las=["332"])
    assert list(ROLE_AUDIENCES[role]) == audience
    token = mint(principal)
    for service in SERVICES:
        if service in audience:
            assert (await verifier(service).verify(token)).role == role
        else:
            with pytest.raises(InvalidToken):
                await verifier(service).verify(token)


async def test_a_notifier_token_is_refused_by_ingest() -> None:
    token = mint(person("dsl", schools=["103456"]))
    assert isinstance(await verifier("notifier").verify(token), Principal)
    with pytest.raises(InvalidToken, match="InvalidAudience"):
        await verifier("ingest").verify(token)


async def test_a_previous_keys_token_verifies_while_published_and_not_once_retired() -> None:
    old = mint(police(), keyset=PREVIOUS)  # signed before the rotation, by today's previous key
    assert (await verifier("ingest", KEYSET).verify(old)).force_code == "WMP"
    retired = Keyset((KEYSET.active,))  # the previous key taken off the list
    with pytest.raises(InvalidToken, match="unknown kid"):
        await verifier("ingest", retired).verify(old)


def test_rotation_puts_a_new_key_first_and_keeps_the_previous_one_published() -> None:
    first = json.dumps([generate_key()])
    second = rotated(first)
    third = rotated(second)
    a, b, c = (Keyset.from_setting(s) for s in (first, second, third))
    assert b.kids[1:] == a.kids and b.active_kid != a.active_kid
    assert [k["kid"] for k in c.jwks()["keys"]] == c.kids == [c.active_kid, b.active_kid]
    assert a.active_kid not in parse_jwks(json.dumps(c.jwks()))  # retired by the second turn


class Issuer:
    """A JWKS endpoint whose key set the test changes, counting fetches."""

    def __init__(self, keyset: Keyset) -> None:
        self.keyset: Keyset | None = keyset
        self.fetches = 0

    async def fetch(self) -> bytes:
        self.fetches += 1
        if self.keyset is None:
            import httpx

            raise httpx.ConnectError("issuer away")
        return json.dumps(self.keyset.jwks()).encode()


async def test_an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() -> None:
    issuer, now = Issuer(PREVIOUS), [0.0]
    checker = TokenVerifier(audience="ingest", issuer="daybreak", fetch=issuer.fetch,
                            cache_s=300, refetch_s=10, clock=lambda: now[0])
    await checker.verify(mint(police(), keyset=PREVIOUS))
    await checker.verify(mint(police(), keyset=PREVIOUS))
    assert issuer.fetches == 1  # cached
    issuer.keyset = KEYSET  # the issuer rotated: a token with the new kid arrives at once
    now[0] = 20.0
    assert (await checker.verify(mint(police()))).role == "police"
    assert issuer.fetches == 2
    for _ in range(5):  # made-up kids: refused without asking the issuer again
        with pytest.raises(InvalidToken):
            await checker.verify(mint(police(), keyset=STRANGER))
    assert issuer.fetches == 2
    now[0] = 31.0
    with pytest.raises(InvalidToken):
        await checker.verify(mint(police(), keyset=STRANGER))
    assert issuer.fetches == 3


async def test_an_issuer_away_keeps_the_cached_keys_and_none_at_all_is_unavailable() -> None:
    issuer, now = Issuer(KEYSET), [0.0]
    checker = TokenVerifier(audience="ingest", issuer="daybreak", fetch=issuer.fetch,
                            cache_s=60, refetch_s=10, clock=lambda: now[0])
    await checker.verify(mint(police()))
    issuer.keyset, now[0] = None, 120.0  # stale and the issuer is down: still verifies
    assert (await checker.verify(mint(police()))).role == "police"
    cold = TokenVerifier(audience="ingest", issuer="daybreak", fetch=issuer.fetch)
    with pytest.raises(KeysUnavailable):
        await cold.verify(mint(police()))


def test_identity_refuses_missing_or_garbled_keys_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DAYBREAK_IDENTITY_SIGNING_KEYS", raising=False)
    with pytest.raises(ValidationError, match="IDENTITY_SIGNING_KEYS"):
        IdentitySettings(env="production", child_key_secret="k" * 40)
    with pytest.raises(ValidationError):
        IdentitySettings(env="test", child_key_secret="k" * 40,
                         identity_signing_keys='["not a key"]')
    with pytest.raises(BadSigningKey, match="twice"):
        key = generate_key()
        Keyset.from_setting(json.dumps([key, key]))
    dev = IdentitySettings(env="development")
    assert len(dev.keyset().keys) == 1  # an ephemeral key, development only


def test_keys_rotate_and_jwks_commands(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from services.cli import main

    current = json.dumps([generate_key()])
    monkeypatch.setenv("DAYBREAK_IDENTITY_SIGNING_KEYS", current)
    assert main(["keys", "rotate"]) == 0
    new = capsys.readouterr().out.strip()
    assert Keyset.from_setting(new).kids[1:] == Keyset.from_setting(current).kids
    monkeypatch.setenv("DAYBREAK_IDENTITY_SIGNING_KEYS", new)
    assert main(["keys", "jwks"]) == 0
    published = parse_jwks(capsys.readouterr().out)
    assert list(published) == Keyset.from_setting(new).kids
    assert main(["keys", "rotate", "--keep", "1"]) == 1  # would retire the live key at once


async def test_a_remembered_token_still_expires_loses_its_key_and_is_revoked() -> None:
    """Tokens verified once skip the signature check next time, and nothing else: the
    expiry is the wall clock's, a retired key refuses them, revocations are asked each time,
    and only so many are remembered."""
    now = datetime.now(UTC)  # tokens are also checked on the real clock (not now: the
    # module's import time, more than a token's life before this runs in a long session)
    issuer, wall = Issuer(KEYSET), [now.timestamp()]
    checker = TokenVerifier(audience="ingest", issuer="daybreak", fetch=issuer.fetch,
                            cache_s=60, refetch_s=0, wall=lambda: wall[0], remember=2)
    token = mint(police(), now=now, ttl_s=900)
    assert (await checker.verify(token)).force_code == "WMP"
    assert (await checker.verify(token)).force_code == "WMP"
    wall[0] = now.timestamp() + 901  # past its exp: refused although it was remembered
    with pytest.raises(InvalidToken):
        await checker.verify(token)

    wall[0] = now.timestamp()
    keys = Issuer(KEYSET)  # today's key and the previous one
    retiring = TokenVerifier(audience="ingest", issuer="daybreak", fetch=keys.fetch,
                             cache_s=0, refetch_s=0, wall=lambda: wall[0])
    old = mint(police(), keyset=PREVIOUS, now=now)
    assert (await retiring.verify(old)).role == "police"  # remembered under the previous key
    keys.keyset = Keyset((KEYSET.active,))  # ... which the issuer then retires
    with pytest.raises(InvalidToken, match="unknown kid"):
        await retiring.verify(old)

    class Revoked:
        async def refuses(self, claims: Any) -> bool:
            return True

    live = mint(police(), now=now)
    await checker.verify(live)
    checker.revocations = Revoked()
    with pytest.raises(InvalidToken, match="revoked"):
        await checker.verify(live)
    checker.revocations = None
    for _ in range(3):
        await checker.verify(mint(police(), now=now))
    assert len(checker._verified) == 2
