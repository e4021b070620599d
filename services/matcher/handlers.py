"""The matcher's consumer: one handler per event type, one transaction per poll."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import Envelope
from schemas.incidents import ChildWithdrawn, IncidentCorrected, IncidentReceived, IncidentWithdrawn
from services.common.db import UnitOfWork
from services.common.events import transactional
from services.common.idempotency import claim_event
from services.matcher.decisions import (
    Reported,
    already_decided,
    engine_child,
    incident_date,
    incident_facts,
    record_decision,
)
from services.matcher.index import RosterCache
from services.matcher.models import reviews, withdrawn_incidents
from services.matcher.reviews import carry_open_reviews, close_open_reviews

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
    if await _withdrawn(uow, event.incident_id):
        return
    await _decide(event, range(len(event.incident.children)), deps=deps, uow=uow)


@transactional
async def on_incident_corrected(envelope: Envelope[Any], *, deps: MatcherDeps,
                                uow: UnitOfWork) -> None:
    """Match again only the children a correction changed (once per child and version); an
    open review of a changed or dropped child is closed."""
    event: IncidentCorrected = envelope.payload
    if not await claim_event(uow.conn, consumer=CONSUMER, event_id=envelope.event_id):
        return
    if await _withdrawn(uow, event.incident_id):
        return
    now = deps.clock()
    await close_open_reviews(uow.conn, event.incident_id, event.changed_children,
                             status="superseded", at=now, before_version=event.version)
    await close_open_reviews(uow.conn, event.incident_id, event.withdrawn_children,
                             status="withdrawn", at=now)
    touched = {*event.changed_children, *event.withdrawn_children}
    await carry_open_reviews(uow.conn, event.incident_id,
                             [i for i in range(len(event.incident.children)) if i not in touched],
                             facts=incident_facts(event), version=event.version, at=now)
    await _decide(event, event.changed_children, deps=deps, uow=uow)


@transactional
async def on_child_withdrawn(envelope: Envelope[Any], *, deps: MatcherDeps,
                             uow: UnitOfWork) -> None:
    """A child withdrawn alone: its open review is closed (its decision stays on record)."""
    event: ChildWithdrawn = envelope.payload
    if await claim_event(uow.conn, consumer=CONSUMER, event_id=envelope.event_id):
        await close_open_reviews(uow.conn, event.incident_id, [event.child_index],
                                 status="withdrawn", at=event.withdrawn_at)


async def _withdrawn(uow: UnitOfWork, incident_id: Any) -> bool:
    gone = await uow.conn.execute(select(withdrawn_incidents.c.incident_id).where(
        withdrawn_incidents.c.incident_id == incident_id))
    return gone.first() is not None


async def _decide(event: Reported, indexes: Iterable[int], *, deps: MatcherDeps,
                  uow: UnitOfWork) -> None:
    registry = await deps.roster.get()
    now, on = deps.clock(), incident_date(event)
    version = event.version if isinstance(event, IncidentCorrected) else 1
    area = registry.area_urns(event.incident.force_code, event.default_la_code)
    for index in indexes:
        if await already_decided(uow.conn, event.incident_id, index, version):
            continue
        child = event.incident.children[index]
        decision = registry.index.match(engine_child(child, str(index), area), on_date=on)
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
    "IncidentCorrected": on_incident_corrected,
    "ChildWithdrawn": on_child_withdrawn,
}
