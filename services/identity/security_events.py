"""Security events: every sign-in, failed sign-in and throttled refusal, kept for admins.

A row says which door (a police client's token or a person's session), what happened, a
digest of the login (never the e-mail, the client id's secret or a password), the client's
address and its user agent; the same facts go to one log line. Rows are purged after
DAYBREAK_SECURITY_EVENTS_RETENTION_DAYS by the identity service's daily run.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db import UnitOfWork
from services.common.outbox import purge_published
from services.common.retention import OUTBOX_KEPT_DAYS
from services.identity.models import auth_failures, security_events, sessions
from services.identity.sessions import SOURCE as OUTBOX_SOURCE

log = logging.getLogger("daybreak.identity.security")
# which door: a client's token, a person's sign-in, a person's password asked again (before
# ending a session), a person ending their own sessions
Kind = Literal["client_token", "user_session", "reauthentication", "session_end"]
Outcome = Literal["success", "failure", "throttled"]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
USER_AGENT_CHARS = 200
MAX_PAGE = 500
_WORDS: dict[str, str] = {"client_token": "sign-in", "user_session": "sign-in",
                          "reauthentication": "password asked again",
                          "session_end": "own sessions ended"}
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True)
class Attempt:
    """Where and when a sign-in was tried: what its security event and the throttle record."""

    client_address: str
    user_agent: str
    at: datetime


def trusted_networks(networks: Sequence[str]) -> tuple[IpNetwork, ...]:
    """The proxies whose word on a sign-in's address identity takes (settings' strings)."""
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def client_address(peer: str | None, claimed: str | None, trusted: Sequence[IpNetwork]) -> str:
    """The address a sign-in came from: the relay's claim when the peer is a trusted proxy
    and the claim is an address, else the peer itself (nobody else's header counts)."""
    peer_ip = _ip(peer)
    if peer_ip is None:
        return UNKNOWN_ADDRESS
    if claimed is not None and any(peer_ip in net for net in trusted):
        claimed_ip = _ip(claimed.strip())
        if claimed_ip is not None:
            return str(claimed_ip)
    return str(peer_ip)


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text or "")
    except ValueError:
        return None


def printable_agent(user_agent: str | None) -> str:
    """A user agent fit to store and show: printable characters, at most 200."""
    return "".join(c for c in (user_agent or "") if c.isprintable())[:USER_AGENT_CHARS]


async def record_event(
    conn: AsyncConnection, attempt: Attempt, *, kind: Kind, outcome: Outcome, subject_hash: str
) -> None:
    """Add the event in the caller's transaction and log it (no e-mail, no secret)."""
    await conn.execute(insert(security_events).values(
        at=attempt.at, kind=kind, outcome=outcome, subject_hash=subject_hash,
        client_address=attempt.client_address, user_agent=attempt.user_agent))
    log.info("%s %s", _WORDS[kind], outcome, extra={
        "security_event": kind, "outcome": outcome, "subject_hash": subject_hash,
        "client_address": attempt.client_address})


def event_view(row: Any) -> dict[str, Any]:
    """A security event as an admin reads it."""
    return {"id": row.id, "at": row.at.isoformat(), "kind": row.kind, "outcome": row.outcome,
            "subject_hash": row.subject_hash, "client_address": row.client_address,
            "user_agent": row.user_agent}


async def list_events(
    conn: AsyncConnection, *, since: datetime | None, cursor: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of events in the order they were recorded, from `since`, after `cursor` (the
    last id of the page before); and the next page's cursor (None: the last page)."""
    e = security_events.c
    query = select(security_events).order_by(e.id).limit(limit + 1)
    if since is not None:
        query = query.where(e.at >= since)
    if cursor is not None:
        query = query.where(e.id > cursor)
    rows = (await conn.execute(query)).all()
    page, more = rows[:limit], len(rows) > limit
    return [event_view(r) for r in page], str(page[-1].id) if more else None


async def purge_events(conn: AsyncConnection, *, before: datetime) -> int:
    """Delete the events recorded before `before`; returns how many."""
    result = await conn.execute(delete(security_events).where(security_events.c.at < before)
                                .returning(security_events.c.id))
    return len(result.all())


async def run_retention(engine: AsyncEngine, *, now: datetime, days: int, window: timedelta
                        ) -> int:
    """Purge events past their period, failed sign-ins the throttle no longer counts,
    sessions that ended as long ago as events are kept (subject, kind and times: kept beside
    the events that name them), and the revocations identity's outbox published more than
    OUTBOX_KEPT_DAYS ago (the topic has them); returns how many events were purged."""
    async with UnitOfWork(engine) as uow:
        purged = await purge_events(uow.conn, before=now - timedelta(days=days))
        await uow.conn.execute(delete(auth_failures)
                               .where(auth_failures.c.failed_at < now - window))
        await uow.conn.execute(delete(sessions)
                               .where(sessions.c.expires_at < now - timedelta(days=days)))
        await purge_published(uow.conn, source=OUTBOX_SOURCE,
                              before=now - timedelta(days=OUTBOX_KEPT_DAYS))
        await uow.commit()
    if purged:
        log.info("security events purged", extra={"count": purged, "retention_days": days})
    return purged
