"""Accounts: police API clients and people, their creation and their sign-in checks."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.security import CLIENT_SCOPES, ROLE_SCOPES, ROLES, Principal
from services.identity.models import api_clients, users
from services.identity.passwords import (
    DEFAULT_HASHER,
    SecretHasher,
    SignInGate,
    hash_secret,
    subject_hash,
)
from services.identity.security_events import Attempt, IpNetwork, Kind, record_event
from services.identity.strength import weakness
from services.identity.throttle import Budgets, count_failure, forget_failures, is_throttled
from services.identity.totp_vault import TotpVault, seal_row

MIN_PASSWORD_LENGTH = 12
TOTP_ISSUER = "Daybreak"

_TOTP_CODE = re.compile(r"[0-9]{6}")  # ASCII digits only (\d would take ١٢٣٤٥٦)


class AccountError(ValueError):
    """A request to create an account that cannot be honoured (message is safe to show)."""


class AccountExists(AccountError):
    """A person with that e-mail address already has an account."""


@dataclass(frozen=True)
class NewClient:
    """A created police client; the secret is shown once and never stored."""

    client_id: str
    client_secret: str


@dataclass(frozen=True)
class NewUser:
    """A created person; the TOTP URI is shown once for enrolment."""

    user_id: uuid.UUID
    totp_uri: str


async def create_client(conn: AsyncConnection, *, force_code: str) -> NewClient:
    """Create a client-credentials client for one force."""
    force = force_code.strip().upper()
    if not force.isalpha() or not 2 <= len(force) <= 10:
        raise AccountError("force code must be 2 to 10 letters")
    client_id = f"{force.lower()}-{secrets.token_hex(8)}"
    secret = new_client_secret()
    await conn.execute(
        insert(api_clients).values(
            client_id=client_id, force_code=force, secret_hash=await hash_secret(secret),
            scopes=list(CLIENT_SCOPES),
        )
    )
    return NewClient(client_id, secret)


async def create_user(
    conn: AsyncConnection,
    *,
    vault: TotpVault,
    email: str,
    password: str,
    role: str,
    school_urns: list[str],
    la_codes: list[str],
) -> NewUser:
    """Create a person with a role and the schools or local authorities they act for; the
    TOTP secret is stored sealed by `vault`."""
    email = email.strip().lower()
    _check_user(email, password, role, school_urns, la_codes)
    exists = await conn.execute(select(users.c.user_id).where(users.c.email == email))
    if exists.first() is not None:
        raise AccountExists("a user with that email already exists")
    user_id = uuid.uuid4()
    totp_secret = new_totp_secret()
    await conn.execute(
        insert(users).values(
            user_id=user_id, email=email, password_hash=await hash_secret(password),
            **vault.stored(user_id, totp_secret), role=role, school_urns=school_urns,
            la_codes=la_codes,
        )
    )
    return NewUser(user_id, totp_uri(totp_secret, email))


def new_password() -> str:
    """A one-time password for a person, shown once to the admin who set it."""
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def new_totp_secret() -> str:
    """A fresh TOTP secret (base32)."""
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app enrols from."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def new_client_secret() -> str:
    """A police client's secret (shown once, stored only as a hash)."""
    return secrets.token_urlsafe(32)


def _check_user(
    email: str, password: str, role: str, school_urns: list[str], la_codes: list[str]
) -> None:
    if "@" not in email or len(email) > 320:
        raise AccountError("email is not valid")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    weak = weakness(password, known=[email, role])
    if weak is not None:
        raise AccountError(weak)
    check_access(role, school_urns, la_codes)


def check_access(role: str, school_urns: list[str], la_codes: list[str]) -> None:
    """Refuse a role and the schools or LAs it acts for that do not go together."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if role in ("dsl", "deputy_dsl") and not school_urns:
        raise AccountError("a DSL needs at least one --school")
    if role == "la_officer" and not la_codes:
        raise AccountError("an LA officer needs at least one --la")
    if role == "partnership" and (school_urns or not la_codes):
        raise AccountError("a partnership needs at least one --la (the LAs of the partnership) "
                           "and no --school")
    if role in ("auditor", "admin") and (school_urns or la_codes):
        raise AccountError("auditors and admins are not tied to schools or local authorities")
    if any(not (u.isdigit() and 6 <= len(u) <= 7) for u in school_urns):
        raise AccountError("a school URN is 6 or 7 digits")


@dataclass(frozen=True, kw_only=True)
class SignInPolicy:
    """How sign-ins are checked: the hasher, its gate, the failure budgets, trusted relays."""

    gate: SignInGate
    budgets: Budgets
    trusted_proxies: tuple[IpNetwork, ...]
    hasher: SecretHasher = DEFAULT_HASHER


@dataclass(frozen=True)
class SignIn:
    """What a sign-in check decided: the principal, or None (wrong, or `throttled`)."""

    principal: Principal | None = None
    throttled: bool = False


THROTTLED = SignIn(throttled=True)


async def authenticate_client(
    conn: AsyncConnection, *, client_id: str, secret: str, attempt: Attempt,
    policy: SignInPolicy,
) -> SignIn:
    """Check client credentials, counting failures and recording the security event."""
    subject = subject_hash(f"client:{client_id}")
    if await is_throttled(conn, subject, attempt, policy.budgets):
        await record_event(conn, attempt, kind="client_token", outcome="throttled",
                           subject_hash=subject)
        return THROTTLED
    row = (
        await conn.execute(
            select(api_clients).where(
                api_clients.c.client_id == client_id, api_clients.c.disabled_at.is_(None)
            )
        )
    ).first()
    if not await policy.hasher.verify(row.secret_hash if row else None, secret) or row is None:
        await _failed(conn, "client_token", subject, attempt)
        return SignIn()
    await record_event(conn, attempt, kind="client_token", outcome="success",
                       subject_hash=subject)
    return SignIn(Principal(
        subject=row.client_id, kind="client", role="police",
        scopes=frozenset(row.scopes), force_code=row.force_code,
    ))


async def authenticate_user(
    conn: AsyncConnection, *, email: str, password: str, totp: str, attempt: Attempt,
    policy: SignInPolicy, vault: TotpVault, kind: Kind = "user_session",
) -> SignIn:
    """Check password and a fresh TOTP code, counting failures and recording the event
    (`kind` "reauthentication": the person's password asked again, on the same budgets)."""
    # normalised as the lookup is, so " a@b" cannot start a fresh count of failures
    subject = subject_hash(f"user:{email.strip()}")
    if await is_throttled(conn, subject, attempt, policy.budgets):
        await record_event(conn, attempt, kind=kind, outcome="throttled",
                           subject_hash=subject)
        return THROTTLED
    row = (
        await conn.execute(
            select(users).where(
                users.c.email == email.strip().lower(), users.c.disabled_at.is_(None)
            )
        )
    ).first()
    password_ok = await policy.hasher.verify(row.password_hash if row else None, password)
    secret = vault.secret_or_none(row) if row is not None and password_ok else None
    step = _totp_step(secret, totp, attempt.at) if secret is not None else None
    if row is not None and row.totp_secret is not None:  # a row from before 0020: seal it
        await seal_row(conn, vault, row.user_id, row.totp_secret)
    if row is None or step is None or (row.last_totp_step or -1) >= step:
        await _failed(conn, kind, subject, attempt)
        return SignIn()
    await conn.execute(
        update(users).where(users.c.user_id == row.user_id).values(last_totp_step=step)
    )
    await forget_failures(conn, subject, attempt)
    await record_event(conn, attempt, kind=kind, outcome="success",
                       subject_hash=subject)
    return SignIn(Principal(
        subject=str(row.user_id), kind="user", role=row.role,
        scopes=frozenset(ROLE_SCOPES.get(row.role, ())),
        school_urns=frozenset(row.school_urns), la_codes=frozenset(row.la_codes),
        email=row.email,
    ))


async def _failed(conn: AsyncConnection, kind: Kind, subject: str, attempt: Attempt) -> None:
    await count_failure(conn, subject, attempt)
    await record_event(conn, attempt, kind=kind, outcome="failure", subject_hash=subject)


def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step a valid code belongs to (±1 step of drift), so it cannot be replayed.

    A code that is not six ASCII digits is wrong before anything is compared, and the
    comparison is of bytes: `compare_digest` raises on a non-ASCII str, which made a code
    like "é" answer 500 exactly when the password was right (a password oracle)."""
    given = code.strip()
    if not _TOTP_CODE.fullmatch(given):
        return None
    totp = pyotp.TOTP(secret)
    for drift in (0, -1, 1):
        at = now + timedelta(seconds=drift * totp.interval)
        if secrets.compare_digest(totp.at(at).encode(), given.encode()):
            return totp.timecode(at)
    return None
