"""Secrets, passwords and tokens: argon2 hashes, HS256 JWTs, the authenticated principal."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.common.settings import Settings

ROLES = ("dsl", "deputy_dsl", "la_officer", "auditor", "admin")
Role = Literal["dsl", "deputy_dsl", "la_officer", "auditor", "admin", "police"]
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "dsl": ("notifications:read", "notifications:ack"),
    "deputy_dsl": ("notifications:read", "notifications:ack"),
    "la_officer": ("reviews:read", "reviews:resolve", "notifications:read", "notifications:ack"),
    "auditor": ("audit:read",),
    "admin": ("admin",),
}
CLIENT_SCOPES = ("incidents:write",)

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_secret(secret: str) -> str:
    """An argon2id hash of a password or client secret."""
    return _hasher.hash(secret)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """Check a secret in constant work whether or not the account exists."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, secret) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def subject_hash(subject: str) -> str:
    """A stable digest of a login name, so rate-limit rows never hold the name itself."""
    return hashlib.sha256(subject.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a police client or a person, with what they may touch."""

    subject: str
    kind: Literal["client", "user"]
    role: str
    scopes: frozenset[str]
    force_code: str | None = None
    school_urns: frozenset[str] = field(default_factory=frozenset)
    la_codes: frozenset[str] = field(default_factory=frozenset)


def issue_token(settings: Settings, principal: Principal, *, now: datetime) -> tuple[str, int]:
    """A signed bearer token for the principal and its lifetime in seconds."""
    ttl = (
        settings.client_token_ttl_seconds
        if principal.kind == "client"
        else settings.user_token_ttl_seconds
    )
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": principal.subject,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()) - 5,
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
        "kind": principal.kind,
        "role": principal.role,
        "scope": " ".join(sorted(principal.scopes)),
    }
    if principal.force_code:
        claims["force"] = principal.force_code
    if principal.school_urns:
        claims["schools"] = sorted(principal.school_urns)
    if principal.la_codes:
        claims["las"] = sorted(principal.la_codes)
    token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
    return token, ttl


class InvalidToken(Exception):
    """The bearer token is missing, malformed, forged, expired or for another audience."""


def decode_token(settings: Settings, token: str) -> Principal:
    """Verify signature, algorithm, issuer, audience and expiry; return the principal."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(type(exc).__name__) from None
    kind = claims.get("kind")
    if kind not in ("client", "user"):
        raise InvalidToken("kind")
    return Principal(
        subject=str(claims["sub"]),
        kind=kind,
        role=str(claims.get("role", "")),
        scopes=frozenset(str(claims.get("scope", "")).split()),
        force_code=claims.get("force"),
        school_urns=frozenset(claims.get("schools", ())),
        la_codes=frozenset(claims.get("las", ())),
    )
