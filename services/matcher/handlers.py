"""The matcher's consumer: one handler per event type, one transaction per poll.

New incidents and withdrawals are handled set-based (`per_poll`): a run of them costs a
constant number of statements however many incidents and children it holds."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.envelope import Envelope
from schemas.incidents import ChildWithdrawn, IncidentCorrected, IncidentReceived, IncidentWithdrawn
from services.common.db import UnitOfWork
from services.common.events import per_poll, transactional
from services.common.idempotency import claim_event, claim_events
from services.matcher.decisions import (
    DecisionRows,
    Reported,
    decided_versions,
    decision_rows,
    engine_child,
    incident_date,
    incident_facts,
    version_of,
    write_decisions,
)
from services.matcher.index import RosterCache
from services.matcher.reviews import carry_open_reviews, close_open_reviews

log = logging.getLogger(__name__)
CONSUMER = "matcher"

_WITHDRAWN = text("""
SELECT incident_id FROM matcher.matcher_withdrawn_incidents
WHERE incident_id = ANY(CAST(:ids AS uuid[]))""")
_WITHDRAW = text("""
INSERT INTO matcher.matcher_withdrawn_incidents (incident_id, withdrawn_at)
SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:at AS timestamptz[])) ORDER BY 1
ON CONFLICT DO NOTHING""")
_WITHDRAW_REVIEWS = text("""
UPDATE matcher.reviews r SET status = 'withdrawn', resolved_at = w.withdrawn_at
FROM unnest(CAST(:ids AS uuid[]), CAST(:at AS timestamptz[])) AS w(incident_id, withdrawn_at)
WHERE r.incident_id = w.incident_id AND r.status = 'open'""")


@dataclass
class MatcherDeps:
    """What the handlers need, wired in main.py."""

    engine: AsyncEngine
    roster: RosterCache
    topic_prefix: str
    clock: Callable[[], datetime]
    published: Callable[[], None]
    on_decided: Callable[[str], None] = lambda status: None


@per_poll
async def on_incidents_received(envelopes: list[Envelope[Any]], *, deps: MatcherDeps,
                                uow: UnitOfWork) -> None:
    """Match every child of a run of new incidents, skipping those withdrawn first."""
    events: list[IncidentReceived] = await _claimed(uow.conn, envelopes)
    gone = await _withdrawn(uow.conn, [event.incident_id for event in events])
    await _decide(uow, [(event, range(len(event.incident.children))) for event in events
                        if event.incident_id not in gone], deps=deps)


async def on_incident_received(envelope: Envelope[Any], *, deps: MatcherDeps,
                               uow: UnitOfWork | None = None) -> None:
    """One new incident (tests and replays): a run of one."""
    await on_incidents_received([envelope], deps=deps, uow=uow)


@transactional
async def on_incident_corrected(envelope: Envelope[Any], *, deps: MatcherDeps,
                                uow: UnitOfWork) -> None:
    """Match again only the children a correction changed (once per child and version); an
    open review of a changed or dropped child is closed."""
    event: IncidentCorrected = envelope.payload
    if not await claim_event(uow.conn, consumer=CONSUMER, event_id=envelope.event_id):
        return
    if await _withdrawn(uow.conn, [event.incident_id]):
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
    await _decide(uow, [(event, event.changed_children)], deps=deps)


@transactional
async def on_child_withdrawn(envelope: Envelope[Any], *, deps: MatcherDeps,
                             uow: UnitOfWork) -> None:
    """A child withdrawn alone: its open review is closed (its decision stays on record)."""
    event: ChildWithdrawn = envelope.payload
    if await claim_event(uow.conn, consumer=CONSUMER, event_id=envelope.event_id):
        await close_open_reviews(uow.conn, event.incident_id, [event.child_index],
                                 status="withdrawn", at=event.withdrawn_at)


@per_poll
async def on_incidents_withdrawn(envelopes: list[Envelope[Any]], *, deps: MatcherDeps,
                                 uow: UnitOfWork) -> None:
    """Remember the withdrawals so their children are never matched; close their reviews."""
    events: list[IncidentWithdrawn] = await _claimed(uow.conn, envelopes)
    first = {event.incident_id: event.withdrawn_at for event in reversed(events)}
    if first:
        columns = {"ids": list(first), "at": list(first.values())}
        await uow.conn.execute(_WITHDRAW, columns)
        await uow.conn.execute(_WITHDRAW_REVIEWS, columns)


async def on_incident_withdrawn(envelope: Envelope[Any], *, deps: MatcherDeps,
                                uow: UnitOfWork | None = None) -> None:
    """One withdrawal (tests and replays): a run of one."""
    await on_incidents_withdrawn([envelope], deps=deps, uow=uow)


async def _claimed(conn: AsyncConnection, envelopes: Sequence[Envelope[Any]]) -> list[Any]:
    """The payloads of the envelopes not processed before, each event id once, in order."""
    fresh = await claim_events(conn, consumer=CONSUMER,
                               event_ids=[envelope.event_id for envelope in envelopes])
    out = []
    for envelope in envelopes:
        if envelope.event_id in fresh:
            fresh.discard(envelope.event_id)  # a record redelivered within the run
            out.append(envelope.payload)
    return out


async def _withdrawn(conn: AsyncConnection, incident_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not incident_ids:
        return set()
    return set((await conn.execute(_WITHDRAWN, {"ids": incident_ids})).scalars())


async def _decide(uow: UnitOfWork, work: list[tuple[Reported, Iterable[int]]], *,
                  deps: MatcherDeps) -> None:
    """Decide these children of these reports in memory, then write them all at once; a
    child already decided at its report's version (before, or earlier in the run) is
    skipped."""
    if not work:
        return
    registry = await deps.roster.get()
    now = deps.clock()
    decided = await decided_versions(uow.conn, {event.incident_id for event, _ in work})
    rows: list[DecisionRows] = []
    for event, indexes in work:
        on, version = incident_date(event), version_of(event)
        area = registry.area_urns(event.incident.force_code, event.default_la_code)
        for index in indexes:
            if decided.get((event.incident_id, index), 0) >= version:
                continue
            decided[(event.incident_id, index)] = version
            child = event.incident.children[index]
            decision = registry.index.match(engine_child(child, str(index), area), on_date=on)
            rows.append(decision_rows(uow.conn, event=event, index=index, decision=decision,
                                      registry=registry, topic_prefix=deps.topic_prefix,
                                      now=now))
            uow.after_commit(functools.partial(deps.on_decided, decision.status))
    await write_decisions(uow.conn, rows, topic_prefix=deps.topic_prefix)
    uow.after_commit(deps.published)


HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "IncidentReceived": on_incidents_received,
    "IncidentWithdrawn": on_incidents_withdrawn,
    "IncidentCorrected": on_incident_corrected,
    "ChildWithdrawn": on_child_withdrawn,
}
