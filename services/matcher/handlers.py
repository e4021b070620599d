"""The matcher's consumer: one handler per event type, one transaction per poll."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import Envelope
from schemas.incidents import IncidentReceived, IncidentWithdrawn
from services.common.db import UnitOfWork
from services.common.events import transactional
from services.common.idempotency import claim_event
from services.matcher.decisions import already_decided, engine_child, incident_date, record_decision
from services.matcher.index import RosterCache
from services.matcher.models import reviews, withdrawn_incidents

log = logging.getLogger(__name__)
CONSUMER = "matcher"


@dataclass
class MatcherDeps:
    """What the handlers need, wired in main.py."""

    engine: AsyncEngine
    roster: RosterCache
    topic_prefix: str
    clock: Callable[[], datetime]
    published: Callable[[], None]
    on_decided: Callable[[str], None] = lambda status: None


@transactional
async def on_incident_received(envelope: Envelope[Any], *, deps: MatcherDeps,
                               uow: UnitOfWork) -> None:
    """Match every child of a new incident, unless it was withdrawn first."""
    event: IncidentReceived = envelope.payload
    if not await claim_event(uow.conn, consumer=CONSUMER, event_id=envelope.event_id):
        return
    gone = await uow.conn.execute(select(withdrawn_incidents.c.incident_id).where(
        withdrawn_incidents.c.incident_id == event.incident_id))
    if gone.first() is not None:
        return
    registry = await deps.roster.get()
    now, on = deps.clock(), incident_date(event)
    for index, child in enumerate(event.incident.children):
        if await already_decided(uow.conn, event.incident_id, index):
            continue
        decision = registry.index.match(engine_child(child, str(index)), on_date=on)
        await record_decision(uow.conn, event=event, index=index, decision=decision,
                              registry=registry, topic_prefix=deps.topic_prefix, now=now)
        uow.after_commit(functools.partial(deps.on_decided, decision.status))
    uow.after_commit(deps.published)


@transactional
async def on_incident_withdrawn(envelope: Envelope[Any], *, deps: MatcherDeps,
                                uow: UnitOfWork) -> None:
    """Remember the withdrawal so its children are never matched; close their reviews."""
    event: IncidentWithdrawn = envelope.payload
    if not await claim_event(uow.conn, consumer=CONSUMER, event_id=envelope.event_id):
        return
    await uow.conn.execute(insert(withdrawn_incidents).values(
        incident_id=event.incident_id, withdrawn_at=event.withdrawn_at,
    ).on_conflict_do_nothing())
    await uow.conn.execute(
        update(reviews).where(reviews.c.incident_id == event.incident_id,
                              reviews.c.status == "open")
        .values(status="withdrawn", resolved_at=event.withdrawn_at))


HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "IncidentReceived": on_incident_received,
    "IncidentWithdrawn": on_incident_withdrawn,
}
