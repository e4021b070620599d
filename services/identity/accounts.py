"""Accounts: police API clients and people, their creation and their sign-in checks."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.security import CLIENT_SCOPES, ROLE_SCOPES, ROLES, Principal
from services.identity.models import api_clients, auth_failures, users
from services.identity.passwords import hash_secret, subject_hash, verify_secret

MIN_PASSWORD_LENGTH = 12
TOTP_ISSUER = "Daybreak"

_TOTP_CODE = re.compile(r"[0-9]{6}")  # ASCII digits only (\d would take ١٢٣٤٥٦)


class AccountError(ValueError):
    """A request to create an account that cannot be honoured (message is safe to show)."""


class AccountExists(AccountError):
    """A person with that e-mail address already has an account."""


class TooManyAttempts(Exception):
    """Sign-in refused without checking: too many recent failures for this subject."""


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
            client_id=client_id, force_code=force, secret_hash=hash_secret(secret),
            scopes=list(CLIENT_SCOPES),
        )
    )
    return NewClient(client_id, secret)


async def create_user(
    conn: AsyncConnection,
    *,
    email: str,
    password: str,
    role: str,
    school_urns: list[str],
    la_codes: list[str],
) -> NewUser:
    """Create a person with a role and the schools or local authorities they act for."""
    email = email.strip().lower()
    _check_user(email, password, role, school_urns, la_codes)
    exists = await conn.execute(select(users.c.user_id).where(users.c.email == email))
    if exists.first() is not None:
        raise AccountExists("a user with that email already exists")
    user_id = uuid.uuid4()
    totp_secret = new_totp_secret()
    await conn.execute(
        insert(users).values(
            user_id=user_id, email=email, password_hash=hash_secret(password),
            totp_secret=totp_secret, role=role, school_urns=school_urns, la_codes=la_codes,
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


async def authenticate_client(
    conn: AsyncConnection, *, client_id: str, secret: str, now: datetime,
    max_failures: int, window: timedelta,
) -> Principal | None:
    """Check client credentials; None when wrong. Raises TooManyAttempts when throttled."""
    subject = subject_hash(f"client:{client_id}")
    await _refuse_if_throttled(conn, subject, now, max_failures, window)
    row = (
        await conn.execute(
            select(api_clients).where(
                api_clients.c.client_id == client_id, api_clients.c.disabled_at.is_(None)
            )
        )
    ).first()
    if not verify_secret(row.secret_hash if row else None, secret) or row is None:
        await conn.execute(insert(auth_failures).values(subject_hash=subject, failed_at=now))
        return None
    return Principal(
        subject=row.client_id, kind="client", role="police",
        scopes=frozenset(row.scopes), force_code=row.force_code,
    )


async def authenticate_user(
    conn: AsyncConnection, *, email: str, password: str, totp: str, now: datetime,
    max_failures: int, window: timedelta,
) -> Principal | None:
    """Check password and a fresh TOTP code; None when wrong. Raises TooManyAttempts."""
    # normalised as the lookup is, so " a@b" cannot start a fresh count of failures
    subject = subject_hash(f"user:{email.strip()}")
    await _refuse_if_throttled(conn, subject, now, max_failures, window)
    row = (
        await conn.execute(
            select(users).where(
                users.c.email == email.strip().lower(), users.c.disabled_at.is_(None)
            )
        )
    ).first()
    password_ok = verify_secret(row.password_hash if row else None, password)
    step = _totp_step(row.totp_secret, totp, now) if row is not None and password_ok else None
    if row is None or step is None or (row.last_totp_step or -1) >= step:
        await conn.execute(insert(auth_failures).values(subject_hash=subject, failed_at=now))
        return None
    await conn.execute(
        update(users).where(users.c.user_id == row.user_id).values(last_totp_step=step)
    )
    await conn.execute(delete(auth_failures).where(auth_failures.c.subject_hash == subject))
    return Principal(
        subject=str(row.user_id), kind="user", role=row.role,
        scopes=frozenset(ROLE_SCOPES.get(row.role, ())),
        school_urns=frozenset(row.school_urns), la_codes=frozenset(row.la_codes),
        email=row.email,
    )


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


async def _refuse_if_throttled(
    conn: AsyncConnection, subject: str, now: datetime, max_failures: int, window: timedelta
) -> None:
    # one check per login at a time, held to commit: parallel guesses each see those before
    await conn.execute(select(func.pg_advisory_xact_lock(int(subject[:15], 16))))
    count = (
        await conn.execute(
            select(func.count()).where(
                auth_failures.c.subject_hash == subject, auth_failures.c.failed_at > now - window
            )
        )
    ).scalar_one()
    if count >= max_failures:
        raise TooManyAttempts
