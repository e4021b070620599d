"""Who may do what, and what a bearer token says: roles, scopes, audiences, the principal.

Tokens are minted only by the identity service (services/identity/tokens.py); every other
service verifies them here with public keys alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ROLES = ("dsl", "deputy_dsl", "la_officer", "auditor", "admin", "partnership")
Role = Literal["dsl", "deputy_dsl", "la_officer", "auditor", "admin", "partnership", "police"]
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "dsl": ("notifications:read", "notifications:ack"),
    "deputy_dsl": ("notifications:read", "notifications:ack"),
    "la_officer": ("reviews:read", "reviews:resolve", "notifications:read", "notifications:ack",
                   "figures:read"),
    "auditor": ("audit:read",),
    "admin": ("admin",),
    # the local Safeguarding Children Partnership: its LAs' figures, read-only, no child data
    "partnership": ("figures:read",),
}
CLIENT_SCOPES = ("incidents:write",)
SERVICES = ("ingest", "matcher", "notifier", "audit")
# a token's `aud`: the services its holder's role uses. Admin routes exist on ingest
# (forces), matcher (registry), notifier (dead deliveries) and identity (people and police
# clients); the audit service has none. Auditors' tokens name the notifier for its portal's
# audit pages alone (they hold no notifications scope there).
ROLE_AUDIENCES: dict[str, tuple[str, ...]] = {
    "police": ("ingest",),
    "dsl": ("notifier",),
    "deputy_dsl": ("notifier",),
    "la_officer": ("matcher", "notifier"),
    "auditor": ("audit", "notifier"),
    "admin": ("ingest", "matcher", "notifier", "identity"),
    "partnership": ("notifier",),
}
ALGORITHM = "EdDSA"  # the only algorithm any service accepts
# `sid`: the identity service's session the token belongs to (services/identity/sessions.py),
# what a revocation names (services/common/revocations.py)
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss", "sid"]


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
    # a person's own address (the `email` claim): a sign-in link opens only for the person it
    # was sent to (services/notifier/portal_links.py); None for police clients
    email: str | None = None


class InvalidToken(Exception):
    """The bearer token is missing, malformed, forged, expired or for another audience."""


def audiences_of(role: str) -> list[str]:
    """The services a role's tokens are addressed to (none for an unknown role)."""
    return list(ROLE_AUDIENCES.get(role, ()))


def principal_claims(principal: Principal) -> dict[str, Any]:
    """The claims that say who the principal is and what it may touch."""
    claims: dict[str, Any] = {
        "sub": principal.subject,
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
    if principal.email:
        claims["email"] = principal.email
    return claims


def signing_kid(token: str) -> str:
    """The `kid` of a token that claims EdDSA; refuses any other header before a key is sought."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(type(exc).__name__) from None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not kid:
        raise InvalidToken("header")
    return kid


def decode_token(
    token: str, *, keys: Mapping[str, Ed25519PublicKey], audience: str, issuer: str
) -> Principal:
    """Verify signature (EdDSA, by `kid`), issuer, audience and expiry; return the principal."""
    return principal_from_claims(decode_claims(token, keys=keys, audience=audience,
                                               issuer=issuer))


def decode_claims(
    token: str, *, keys: Mapping[str, Ed25519PublicKey], audience: str | Sequence[str],
    issuer: str,
) -> dict[str, Any]:
    """The claims of a token verified as `decode_token` verifies it (`audience`: one service,
    or several of which the token must name one)."""
    key = keys.get(signing_kid(token))
    if key is None:
        raise InvalidToken("unknown kid")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=audience, issuer=issuer,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(type(exc).__name__) from None
    if not isinstance(claims["sid"], str) or not claims["sid"]:
        raise InvalidToken("sid")
    return claims


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """The principal a verified token names."""
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
        email=claims["email"] if kind == "user" and isinstance(claims.get("email"), str)
        else None,
    )
