"""What an admin does to people and police clients: list them, create them, disable and
enable them, change what a person acts for, set a new one-time password, re-enrol TOTP,
rotate a client's secret.

Disabling, a change of role, schools or LAs, a new password and a new client secret end the
person's or client's sessions and their tokens at every service, in the same transaction
(services/identity/sessions.py): a token names the role, schools and LAs it was issued for.

Every change is recorded in `account_changes` (who, when, what, to whom; never a secret) in
the transaction that makes it. A new secret is returned once, to be shown once, and only its
hash (or, for TOTP, the secret itself, which sign-in needs, sealed: totp_vault.py) is kept.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.problems import Problem
from services.identity.accounts import (
    check_access,
    create_client,
    create_user,
    new_client_secret,
    new_password,
    new_totp_secret,
    totp_uri,
)
from services.identity.models import account_changes, api_clients, auth_failures, users
from services.identity.passwords import hash_secret, subject_hash
from services.identity.sessions import revoke_subject
from services.identity.totp_vault import TotpVault

MAX_PAGE = 200
_USER = (users.c.user_id, users.c.email, users.c.role, users.c.school_urns, users.c.la_codes,
         users.c.created_at, users.c.disabled_at)
_CLIENT = (api_clients.c.client_id, api_clients.c.force_code, api_clients.c.created_at,
           api_clients.c.disabled_at, api_clients.c.secret_rotated_at)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def user_view(row: Any) -> dict[str, Any]:
    """A person as an admin sees them: no password hash, no TOTP data."""
    return {"id": str(row.user_id), "email": row.email, "role": row.role,
            "school_urns": list(row.school_urns), "la_codes": list(row.la_codes),
            "created_at": row.created_at.isoformat(), "disabled_at": _iso(row.disabled_at)}


def client_view(row: Any) -> dict[str, Any]:
    """A police client as an admin sees it: never its secret or the secret's hash."""
    return {"client_id": row.client_id, "force_code": row.force_code,
            "created_at": row.created_at.isoformat(), "disabled_at": _iso(row.disabled_at),
            "secret_rotated_at": _iso(row.secret_rotated_at)}


def cursor_after(email: str) -> str:
    """The opaque cursor of the page that starts after this address."""
    return base64.urlsafe_b64encode(email.encode()).decode().rstrip("=")


def _email_of(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Problem(422, "Invalid cursor", "Start again from the first page.") from None


async def list_users(conn: AsyncConnection, *, cursor: str | None, limit: int
                     ) -> tuple[list[dict[str, Any]], str | None]:
    """A page of people by e-mail address, and the next page's cursor (None: the last)."""
    query = select(*_USER).order_by(users.c.email).limit(limit + 1)
    if cursor:
        query = query.where(users.c.email > _email_of(cursor))
    rows = (await conn.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [user_view(r) for r in rows], cursor_after(rows[-1].email) if more else None


async def list_clients(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every police client, by force then id."""
    rows = await conn.execute(select(*_CLIENT).order_by(api_clients.c.force_code,
                                                        api_clients.c.client_id))
    return [client_view(r) for r in rows]


async def add_user(conn: AsyncConnection, *, email: str, role: str, school_urns: list[str],
                   la_codes: list[str], actor: str, now: datetime, vault: TotpVault
                   ) -> tuple[dict[str, Any], str, str]:
    """A new person with a one-time password: their view, the password and the TOTP URI."""
    password = new_password()
    made = await create_user(conn, vault=vault, email=email, password=password, role=role,
                             school_urns=school_urns, la_codes=la_codes)
    view = await _user(conn, str(made.user_id))
    await _record(conn, actor, now, "user_created", "user", view["id"], {
        "role": role, "school_urns": view["school_urns"], "la_codes": view["la_codes"]})
    return view, password, made.totp_uri


async def set_user_disabled(conn: AsyncConnection, user_id: str, *, disabled: bool,
                            actor: str, now: datetime, topic_prefix: str) -> dict[str, Any]:
    """Disable (no more sign-ins, every session ended) or enable a person; an admin cannot
    disable themselves."""
    await _user(conn, user_id)
    if disabled and user_id == actor:
        raise Problem(409, "Conflict", "You cannot disable your own account.")
    await conn.execute(update(users).where(users.c.user_id == uuid.UUID(user_id))
                       .values(disabled_at=now if disabled else None))
    if disabled:
        await revoke_subject(conn, user_id, reason="user_disabled", now=now,
                             topic_prefix=topic_prefix)
    await _record(conn, actor, now, "user_disabled" if disabled else "user_enabled", "user",
                  user_id, {})
    return await _user(conn, user_id)


async def set_user_access(conn: AsyncConnection, user_id: str, *, role: str,
                          school_urns: list[str], la_codes: list[str], actor: str,
                          now: datetime, topic_prefix: str) -> dict[str, Any]:
    """Change a person's role, schools and LAs; when anything changed, their sessions end
    (their tokens name the old ones) and they sign in again to act for the new."""
    before = await _user(conn, user_id)
    check_access(role, school_urns, la_codes)
    if role != before["role"] and user_id == actor:
        raise Problem(409, "Conflict", "You cannot change your own role.")
    wanted = {"role": role, "school_urns": sorted(set(school_urns)),
              "la_codes": sorted(set(la_codes))}
    if wanted == {k: before[k] if k == "role" else sorted(before[k]) for k in wanted}:
        return before
    await conn.execute(update(users).where(users.c.user_id == uuid.UUID(user_id))
                       .values(**wanted))
    await revoke_subject(conn, user_id, reason="access_changed", now=now,
                         topic_prefix=topic_prefix)
    await _record(conn, actor, now, "access_changed", "user", user_id, wanted)
    return await _user(conn, user_id)


async def reset_password(conn: AsyncConnection, user_id: str, *, actor: str, now: datetime,
                         topic_prefix: str) -> tuple[dict[str, Any], str]:
    """A new one-time password replaces the person's and ends their sessions (whoever knew
    the old one is signed out); their failed sign-ins are forgiven."""
    view = await _user(conn, user_id)
    await revoke_subject(conn, user_id, reason="password_reset", now=now,
                         topic_prefix=topic_prefix)
    password = new_password()
    await conn.execute(update(users).where(users.c.user_id == uuid.UUID(user_id))
                       .values(password_hash=await hash_secret(password)))
    await conn.execute(delete(auth_failures).where(
        auth_failures.c.subject_hash == subject_hash(f"user:{view['email']}")))
    await _record(conn, actor, now, "password_reset", "user", user_id, {})
    return view, password


async def reenrol_totp(conn: AsyncConnection, user_id: str, *, actor: str, now: datetime,
                       vault: TotpVault) -> tuple[dict[str, Any], str]:
    """A new TOTP secret (codes from the old one stop working); its URI."""
    view = await _user(conn, user_id)
    secret = new_totp_secret()
    await conn.execute(update(users).where(users.c.user_id == uuid.UUID(user_id))
                       .values(**vault.stored(uuid.UUID(user_id), secret),
                               last_totp_step=None))
    await _record(conn, actor, now, "totp_reenrolled", "user", user_id, {})
    return view, totp_uri(secret, view["email"])


async def add_client(conn: AsyncConnection, *, force_code: str, actor: str, now: datetime
                     ) -> tuple[dict[str, Any], str]:
    """A new police client for a force: its view and its secret."""
    made = await create_client(conn, force_code=force_code)
    view = await _client(conn, made.client_id)
    await _record(conn, actor, now, "client_created", "client", made.client_id,
                  {"force_code": view["force_code"]})
    return view, made.client_secret


async def set_client_disabled(conn: AsyncConnection, client_id: str, *, disabled: bool,
                              actor: str, now: datetime, topic_prefix: str) -> dict[str, Any]:
    """Disable (no more tokens, those it holds refused) or enable a police client."""
    client = await _client(conn, client_id)
    await conn.execute(update(api_clients).where(api_clients.c.client_id == client_id)
                       .values(disabled_at=now if disabled else None))
    if disabled:
        await revoke_subject(conn, client["client_id"], reason="client_disabled", now=now,
                             topic_prefix=topic_prefix)
    await _record(conn, actor, now, "client_disabled" if disabled else "client_enabled",
                  "client", client_id, {})
    return await _client(conn, client_id)


async def rotate_secret(conn: AsyncConnection, client_id: str, *, actor: str, now: datetime,
                        topic_prefix: str) -> tuple[dict[str, Any], str]:
    """A new secret replaces the client's at once (the old one, and the tokens got with it,
    stop working)."""
    client = await _client(conn, client_id)
    await revoke_subject(conn, client["client_id"], reason="secret_rotated", now=now,
                         topic_prefix=topic_prefix)
    secret = new_client_secret()
    await conn.execute(update(api_clients).where(api_clients.c.client_id == client_id)
                       .values(secret_hash=await hash_secret(secret), secret_rotated_at=now))
    await _record(conn, actor, now, "client_secret_rotated", "client", client_id, {})
    return await _client(conn, client_id), secret


async def _user(conn: AsyncConnection, user_id: str) -> dict[str, Any]:
    try:
        key = uuid.UUID(user_id)
    except ValueError:
        raise Problem(404, "Not found", "No such user.") from None
    row = (await conn.execute(select(*_USER).where(users.c.user_id == key))).first()
    if row is None:
        raise Problem(404, "Not found", "No such user.")
    return user_view(row)


async def _client(conn: AsyncConnection, client_id: str) -> dict[str, Any]:
    row = (await conn.execute(select(*_CLIENT).where(api_clients.c.client_id == client_id[:64])
                              )).first()
    if row is None:
        raise Problem(404, "Not found", "No such client.")
    return client_view(row)


async def _record(conn: AsyncConnection, actor: str, now: datetime, action: str, kind: str,
                  target: str, facts: dict[str, Any]) -> None:
    await conn.execute(insert(account_changes).values(
        changed_at=now, actor=actor[:64], action=action, target_kind=kind, target_id=target,
        facts=facts))
