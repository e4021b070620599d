"""Sessions: every token the issuer mints belongs to one (its `sid`), and ending sessions
ends their tokens at every service.

A revocation updates `identity.sessions` and stages a `SessionsRevoked` on
`identity-revocations.v1` in the identity outbox, in the caller's transaction. Every other
service's token verifier refuses the revoked tokens once its revocation feed has read the event
(services/common/revocations.py); the identity service refuses them at once, from this table.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.envelope import wrap
from schemas.identity import RevocationReason, SessionsRevoked
from schemas.topics import REVOCATIONS
from services.common.outbox import add_to_outbox
from services.common.security import Principal
from services.identity.models import sessions

SOURCE = "identity"  # the identity outbox's source, under the topic prefix


async def open_session(
    conn: AsyncConnection, principal: Principal, *, now: datetime, ttl_s: int
) -> str:
    """A new session for a token about to be minted for the principal: its `sid`."""
    sid = uuid.uuid4()
    await conn.execute(sessions.insert().values(
        sid=sid, subject=principal.subject, kind=principal.kind, created_at=now,
        expires_at=now + timedelta(seconds=ttl_s)))
    return str(sid)


async def revoke_session(
    conn: AsyncConnection, sid: str, *, reason: RevocationReason, now: datetime,
    topic_prefix: str,
) -> bool:
    """End one session (sign-out); False when it was unknown, over or ended already."""
    try:
        key = uuid.UUID(sid)
    except ValueError:
        return False
    ended = await _end(conn, sessions.c.sid == key, reason=reason, now=now)
    if ended:
        await _announce(conn, SessionsRevoked(sid=str(key), revoked_before=now, reason=reason),
                        key=str(key), topic_prefix=topic_prefix)
    return ended > 0


async def revoke_subject(
    conn: AsyncConnection, subject: str, *, reason: RevocationReason, now: datetime,
    topic_prefix: str,
) -> int:
    """End every live session of a person or police client (every token issued to them
    until now); how many there were. Nothing is announced when none was live."""
    ended = await _end(conn, sessions.c.subject == subject, reason=reason, now=now)
    if ended:
        await _announce(conn, SessionsRevoked(subject=subject, revoked_before=now,
                                              reason=reason),
                        key=subject, topic_prefix=topic_prefix)
    return ended


async def _end(conn: AsyncConnection, which: Any, *, reason: str, now: datetime) -> int:
    result = await conn.execute(
        update(sessions).where(which, sessions.c.revoked_at.is_(None),
                               sessions.c.expires_at > now)
        .values(revoked_at=now, reason=reason))
    return int(result.rowcount)


async def _announce(conn: AsyncConnection, event: SessionsRevoked, *, key: str,
                    topic_prefix: str) -> None:
    await add_to_outbox(conn, source=f"{topic_prefix}{SOURCE}",
                        topic=f"{topic_prefix}{REVOCATIONS}", key=key,
                        envelope=wrap(event, occurred_at=event.revoked_before))


class SessionTable:
    """The issuer's own check of a token: refused when its session was revoked (at once,
    with no wait for the topic)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def refuses(self, claims: Mapping[str, Any]) -> bool:
        """Whether the token's session has been ended."""
        try:
            sid = uuid.UUID(str(claims.get("sid", "")))
        except ValueError:
            return True
        async with self.engine.connect() as conn:
            revoked_at = (await conn.execute(select(sessions.c.revoked_at).where(
                sessions.c.sid == sid))).scalar_one_or_none()
        return revoked_at is not None
