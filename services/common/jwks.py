"""Public signing keys as a JWKS (RFC 7517/8037) and the cache every service verifies with.

A service holds no secret to check a token: it fetches the issuer's JWKS (or reads a static
one from settings), keeps it for `jwks_cache_seconds`, and asks again when a token names a
`kid` it does not know (a key rotated in), at most once per `jwks_refetch_seconds`, so
tokens with made-up kids cannot turn into a flood of fetches. A token whose session was
revoked is refused too, once the verifier's `revocations` know of it
(services/common/revocations.py; the issuer checks its own table).

A token verified once is remembered (its claims, its `kid`, its `exp`) for as long as it is
valid, up to `remember` tokens, so a client's next request skips the signature check (about
two thirds of ingest's CPU per request before): the cache is keyed by the whole token, so
only those very bytes match; its expiry is checked against the wall clock every time; a
token whose key has left the key set is verified afresh (and refused); and revocations are
asked on every request, cached or not.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.common.security import (
    ALGORITHM,
    InvalidToken,
    Principal,
    decode_claims,
    principal_from_claims,
    signing_kid,
)

log = logging.getLogger("daybreak.jwks")
Fetch = Callable[[], Awaitable[bytes]]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(key: Ed25519PublicKey) -> str:
    """The key's RFC 7638 thumbprint: a `kid` no two keys share, needing no registry."""
    x = _b64url(key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"),
                           sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """One public key as a JWK."""
    x = _b64url(key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": key_id(key), "alg": ALGORITHM,
            "use": "sig"}


def jwks_document(keys: list[Ed25519PublicKey]) -> dict[str, Any]:
    """The published key set."""
    return {"keys": [public_jwk(k) for k in keys]}


def parse_jwks(raw: str | bytes) -> dict[str, Ed25519PublicKey]:
    """kid → key for every Ed25519 signing key in a JWKS; anything else in it is ignored."""
    document = json.loads(raw)
    found: dict[str, Ed25519PublicKey] = {}
    for jwk in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(jwk, dict) or (jwk.get("kty"), jwk.get("crv")) != ("OKP", "Ed25519"):
            continue
        if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
            continue
        kid, x = jwk.get("kid"), jwk.get("x")
        if isinstance(kid, str) and kid and isinstance(x, str):
            found[kid] = Ed25519PublicKey.from_public_bytes(_unb64url(x))
    return found


class KeysUnavailable(Exception):
    """No key set could be had from the issuer (it has not answered yet)."""


class Revocations(Protocol):
    """What a verifier asks before admitting a token whose signature and claims are good."""

    async def refuses(self, claims: Mapping[str, Any]) -> bool:
        """Whether the token's session or subject was revoked."""
        ...


class TokenVerifier:
    """Verifies bearer tokens for one audience with a cached JWKS, refusing revoked ones."""

    def __init__(
        self, *, audience: str, issuer: str, static: Mapping[str, Ed25519PublicKey] | None = None,
        fetch: Fetch | None = None, cache_s: float = 300, refetch_s: float = 10,
        clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
        remember: int = 10_000,
    ) -> None:
        if (static is None) == (fetch is None):
            raise ValueError("give either a static key set or a way to fetch one")
        self.audience = audience
        self.issuer = issuer
        self._keys: dict[str, Ed25519PublicKey] = dict(static or {})
        self._fetch = fetch
        self._cache_s, self._refetch_s, self._clock = cache_s, refetch_s, clock
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()
        self.revocations: Revocations | None = None  # set by the service's main.py
        self._wall, self._remember = wall, remember
        # token -> (kid, exp, claims, principal) of tokens verified, least recent first
        self._verified: OrderedDict[str, tuple[str, float, dict[str, Any], Principal]] = (
            OrderedDict())

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token for this audience; InvalidToken otherwise (a
        revoked one too)."""
        known = self._verified.get(token)
        if known is not None:
            await self._refresh(known[0])  # keys are kept fresh whether tokens are cached or not
        if known is not None and known[1] > self._wall() and known[0] in self._keys:
            self._verified.move_to_end(token)
            kid, _, claims, principal = known
        else:
            self._verified.pop(token, None)
            kid = signing_kid(token)
            await self._refresh(kid)
            claims = decode_claims(token, keys=self._keys, audience=self.audience,
                                   issuer=self.issuer)
            if float(claims["exp"]) <= self._wall():  # the clock the cache judges by too
                raise InvalidToken("ExpiredSignatureError")
            principal = principal_from_claims(claims)
            self._verified[token] = (kid, float(claims["exp"]), claims, principal)
            while len(self._verified) > self._remember:
                self._verified.popitem(last=False)
        if self.revocations is not None and await self.revocations.refuses(claims):
            raise InvalidToken("revoked")
        return principal

    async def _refresh(self, kid: str) -> None:
        if self._fetch is None:
            return
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._cache_s
        if not stale and kid in self._keys:
            return
        async with self._lock:
            now = self._clock()
            if self._tried_at is not None and now - self._tried_at < self._refetch_s:
                if not self._keys:
                    raise KeysUnavailable
                return  # asked very recently: an unknown kid now is simply refused
            self._tried_at = now
            try:
                self._keys = parse_jwks(await self._fetch())
                self._fetched_at = now
            except (httpx.HTTPError, ValueError) as exc:
                # keep the keys we had: the issuer being away must not refuse good tokens
                log.warning("jwks fetch failed", extra={"exc_type": type(exc).__name__})
            if not self._keys:
                raise KeysUnavailable


def url_fetch(url: str, http: httpx.AsyncClient | None = None) -> Fetch:
    """Fetch a JWKS over HTTP (with the given client, else a short-lived one)."""

    async def fetch() -> bytes:
        if http is not None:
            resp = await http.get(url, timeout=5)
        else:
            async with httpx.AsyncClient(timeout=5) as client:
                resp = await client.get(url)
        resp.raise_for_status()
        return resp.content

    return fetch


__all__ = ["InvalidToken", "KeysUnavailable", "Revocations", "TokenVerifier", "jwks_document",
           "key_id", "parse_jwks", "public_jwk", "url_fetch"]
