"""The test session's signing keys, and bearer tokens minted with them for any principal.

Services under test trust these keys through their settings (`DAYBREAK_JWKS`, see
`trusting`); the in-process identity service signs with them (`identity_settings_for`).
The active key signs; the previous one is only published, as after a rotation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from services.common.security import ROLE_SCOPES, Principal
from services.common.settings import Settings
from services.identity.keys import Keyset, generate_key
from services.identity.settings import IdentitySettings
from services.identity.tokens import issue_token

ACTIVE_KEY, PREVIOUS_KEY = generate_key(), generate_key()
SIGNING_KEYS = json.dumps([ACTIVE_KEY, PREVIOUS_KEY])
KEYSET = Keyset.from_setting(SIGNING_KEYS)
PREVIOUS = Keyset.from_setting(json.dumps([PREVIOUS_KEY]))
JWKS = json.dumps(KEYSET.jwks())
ISSUER = "daybreak"
_counter = iter(range(1, 1_000_000_000))


def trusting() -> dict[str, Any]:
    """Settings fields that make a service trust (only) the session's keys."""
    return {"jwks": JWKS, "jwt_issuer": ISSUER}


def identity_settings_for(settings: Settings) -> IdentitySettings:
    """The identity service's settings beside the given ones, signing with the session keys.

    Every in-process request comes from 127.0.0.1, so the per-address budget is opened wide
    here (tests/integration/test_signin_throttle.py gives each test its own address)."""
    return IdentitySettings(**settings.model_dump() | {
        "identity_signing_keys": SIGNING_KEYS, "login_address_max_failures": 1_000_000})


def person(role: str, *, schools: Iterable[str] = (), las: Iterable[str] = (),
           subject: str | None = None, scopes: Iterable[str] | None = None) -> Principal:
    """A signed-in person of the role (scopes: the role's, unless given)."""
    return Principal(subject=subject or f"{role}-{next(_counter)}", kind="user", role=role,
                     scopes=frozenset(ROLE_SCOPES[role] if scopes is None else scopes),
                     school_urns=frozenset(schools), la_codes=frozenset(las))


def police(force: str = "WMP", *, subject: str | None = None) -> Principal:
    """A force's police API client."""
    return Principal(subject=subject or f"{force.lower()}-client-{next(_counter)}",
                     kind="client", role="police", scopes=frozenset({"incidents:write"}),
                     force_code=force)


def mint(principal: Principal, *, audience: list[str] | None = None,
         now: datetime | None = None, ttl_s: int = 900, keyset: Keyset = KEYSET,
         issuer: str = ISSUER) -> str:
    """A token as the identity service would issue it (audience: the role's services)."""
    return issue_token(keyset, principal, issuer=issuer, now=now or datetime.now(UTC),
                       ttl_s=ttl_s, audience=audience)


def bearer(principal: Principal, **kwargs: Any) -> dict[str, str]:
    """An Authorization header carrying a freshly minted token (see `mint`)."""
    return {"Authorization": f"Bearer {mint(principal, **kwargs)}"}
