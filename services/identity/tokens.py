"""Minting bearer tokens: EdDSA with the active key's `kid`, addressed to the role's services."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt

from services.common.security import ALGORITHM, Principal, audiences_of, principal_claims
from services.identity.keys import Keyset


def token_claims(
    principal: Principal, *, issuer: str, now: datetime, ttl_s: int,
    audience: list[str] | None = None, sid: str | None = None,
) -> dict[str, Any]:
    """Every claim of a token for the principal (audience: the services its role uses; `sid`:
    its session in services/identity/sessions.py, a fresh id when none is kept)."""
    return {
        "iss": issuer,
        "aud": audience if audience is not None else audiences_of(principal.role),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()) - 5,
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "jti": uuid.uuid4().hex,
        "sid": sid or str(uuid.uuid4()),
        **principal_claims(principal),
    }


def sign(claims: dict[str, Any], keyset: Keyset) -> str:
    """The claims signed with the active key, its `kid` in the header."""
    return jwt.encode(claims, keyset.active, algorithm=ALGORITHM,
                      headers={"kid": keyset.active_kid})


def issue_token(
    keyset: Keyset, principal: Principal, *, issuer: str, now: datetime, ttl_s: int,
    audience: list[str] | None = None, sid: str | None = None,
) -> str:
    """A signed bearer token for the principal."""
    return sign(token_claims(principal, issuer=issuer, now=now, ttl_s=ttl_s, audience=audience,
                             sid=sid), keyset)
