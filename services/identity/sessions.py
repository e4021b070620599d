"""Sessions: every token the issuer mints belongs to one (its `sid`), and ending sessions
ends their tokens at every service.

A revocation updates `identity.sessions` and stages a `SessionsRevoked` on
`identity-revocations.v1` in the identity outbox, in the caller's transaction. Every other
service's token verifier refuses the revoked tokens once its revocation feed has read the event
(services/common/revocations.py); the identity service refuses them at once, from this table.

A person sees their own live sessions (how and where each was signed in) and ends any of them
(`list_own`, `end_own`, `end_others`; ASVS 7.5.2): only ever their own, by subject.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.envelope import wrap
from schemas.identity import RevocationReason, SessionsRevoked
from schemas.topics import REVOCATIONS
from services.common.outbox import add_to_outbox
from services.common.paging import cut, decode_cursor, instant
from services.common.security import Principal
from services.identity.models import sessions

if TYPE_CHECKING:  # security_events imports this module's SOURCE
    from services.identity.security_events import Attempt

SOURCE = "identity"  # the identity outbox's source, under the topic prefix
ENDED_BY_OWNER = "ended_by_owner"  # the row's reason: its person ended it from another session


async def open_session(
    conn: AsyncConnection, principal: Principal, *, now: datetime, ttl_s: int,
    attempt: Attempt | None = None,
) -> str:
    """A new session for a token about to be minted for the principal: its `sid`, with how
    it was signed in and, from the sign-in's `attempt`, where from."""
    sid = uuid.uuid4()
    await conn.execute(sessions.insert().values(
        sid=sid, subject=principal.subject, kind=principal.kind, created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        method="client" if principal.kind == "client" else "password",
        client_address=attempt.client_address if attempt else None,
        user_agent=attempt.user_agent if attempt else None))
    return str(sid)


def _live(subject: str, now: datetime) -> Select[Any]:
    c = sessions.c
    return select(sessions).where(c.subject == subject, c.revoked_at.is_(None),
                                  c.expires_at > now)


async def list_own(
    conn: AsyncConnection, subject: str, *, current: str, now: datetime, limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the subject's live sessions, newest first, the `current` one marked; and
    the next page's cursor (None: the last page)."""
    c = sessions.c
    query = _live(subject, now).order_by(c.created_at.desc(), c.sid.desc()).limit(limit + 1)
    if cursor is not None:
        at, sid = decode_cursor(cursor, instant, uuid.UUID)
        query = query.where((c.created_at < at) | ((c.created_at == at) & (c.sid < sid)))
    rows, next_cursor = cut((await conn.execute(query)).all(), limit,
                            lambda r: (r.created_at.isoformat(), str(r.sid)))
    return [{"id": str(r.sid), "started_at": r.created_at.isoformat(),
             "expires_at": r.expires_at.isoformat(), "method": r.method,
             "client_address": r.client_address, "user_agent": r.user_agent,
             "current": str(r.sid) == current} for r in rows], next_cursor


async def is_live(conn: AsyncConnection, sid: str, *, now: datetime) -> bool:
    """Whether the session is known, not ended and not over (the issuer's own check)."""
    try:
        key = uuid.UUID(sid)
    except ValueError:
        return False
    c = sessions.c
    found = await conn.execute(select(c.sid).where(c.sid == key, c.revoked_at.is_(None),
                                                   c.expires_at > now))
    return found.first() is not None


async def end_own(
    conn: AsyncConnection, subject: str, sid: str, *, now: datetime, topic_prefix: str,
) -> bool:
    """End one of the subject's own live sessions; False when it is not theirs, unknown or
    over (the caller answers 404 alike: another person's session is never revealed)."""
    try:
        key = uuid.UUID(sid)
    except ValueError:
        return False
    return bool(await _end_each(conn, (sessions.c.sid == key) & (sessions.c.subject == subject),
                                now=now, topic_prefix=topic_prefix))


async def end_others(
    conn: AsyncConnection, subject: str, *, keep: str, now: datetime, topic_prefix: str,
) -> int:
    """End every live session of the subject but `keep` (the caller's own); how many. Each
    is announced by its `sid`, so the kept session's tokens stay good."""
    return await _end_each(conn, (sessions.c.subject == subject) & (
        sessions.c.sid != uuid.UUID(keep)), now=now, topic_prefix=topic_prefix)


async def _end_each(conn: AsyncConnection, which: Any, *, now: datetime, topic_prefix: str
                    ) -> int:
    ended = (await conn.execute(
        update(sessions).where(which, sessions.c.revoked_at.is_(None),
                               sessions.c.expires_at > now)
        .values(revoked_at=now, reason=ENDED_BY_OWNER).returning(sessions.c.sid))).scalars()
    count = 0
    for sid in ended:
        count += 1
        # on the topic as a sign-out: every consumer knows that reason already
        await _announce(conn, SessionsRevoked(sid=str(sid), revoked_before=now,
                                              reason="signed_out"),
                        key=str(sid), topic_prefix=topic_prefix)
    return count


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
