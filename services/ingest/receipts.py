"""Ingest's projection of `notifications.v1` into the police's receipts.

Each event is applied once (its `event_id` claimed in the same transaction) and merged so that
order does not matter: first-time facts keep the earliest time (`LEAST` skips NULLs), lists
grow, children follow the newest event that set them. A change that alters the receipt bumps
the force's change counter, whose row lock orders a force's changes by commit, so a reader
paging by it never skips one committed late; the force's webhook gets it in the same
transaction.
"""

from __future__ import annotations

import uuid
from collections import Counter as CountOf
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Uuid, any_, bindparam, case, func, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.envelope import Envelope
from schemas.notifications import (
    ChildOutcome,
    LifecycleEvent,
    NotificationAcknowledged,
    NotificationActionAdded,
    NotificationEscalated,
    NotificationPushed,
    NotificationRetracted,
    NotificationScheduled,
    NotificationUpdated,
    NotificationViewed,
)
from services.common.db import UnitOfWork
from services.common.events import per_poll, transactional
from services.common.idempotency import claim_events
from services.ingest.models import incidents
from services.ingest.receipts_models import (
    receipt_children,
    receipt_incidents,
    receipt_notifications,
)
from services.ingest.receipts_view import digest, projected, projected_rows
from services.ingest.receipts_webhooks import enqueue_deliveries

CONSUMER = "ingest-receipts"
n = receipt_notifications
Merge = Callable[[Any], dict[str, Any]]  # the excluded row -> the columns an upsert sets


@dataclass
class ReceiptDeps:
    """The engine and the clock that stamps when ingest learnt of a change."""

    engine: AsyncEngine
    clock: Callable[[], datetime]


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _earliest(column: str) -> Merge:
    return lambda ex: {column: func.least(n.c[column], ex[column])}


def _appended(column: str) -> Merge:
    return lambda ex: {column: n.c[column].op("||", return_type=JSONB)(ex[column])}


def _union_children(ex: Any) -> dict[str, Any]:
    """The children a notification is about: every NotificationScheduled names the ones it
    adds (a child who joins later comes with one of its own), so the list is their union."""
    both = func.coalesce(n.c.child_indexes, text("'[]'::jsonb")).op("||", return_type=JSONB)(
        ex.child_indexes)
    element = func.jsonb_array_elements(both).table_valued("value").alias("each_index")
    union = (select(func.jsonb_agg(aggregate_order_by(element.c.value.distinct(),
                                                      element.c.value)))
             .select_from(element).scalar_subquery())
    return {"child_indexes": union,
            "child_indexes_at": func.greatest(n.c.child_indexes_at, ex.child_indexes_at)}


async def _upsert(conn: AsyncConnection, event: Any, values: dict[str, Any],
                  merge: Merge) -> None:
    stmt = insert(n).values({
        "notification_id": event.notification_id, "incident_id": event.incident_id,
        "school_urn": event.school_urn, "la_code": event.la_code,
        "recipient_role": "school" if event.school_urn else "la"} | values)
    ex = stmt.excluded
    await conn.execute(stmt.on_conflict_do_update(index_elements=[n.c.notification_id], set_={
        "school_urn": func.coalesce(ex.school_urn, n.c.school_urn),
        "la_code": func.coalesce(ex.la_code, n.c.la_code), **merge(ex)}))


async def _scheduled(conn: AsyncConnection, event: NotificationScheduled) -> None:
    await _upsert(conn, event, {
        "recipient_role": event.recipient_role, "child_indexes": event.child_indexes,
        "child_indexes_at": event.at, "scheduled_at": event.at, "push_at": event.push_at,
        "deadline_at": event.deadline_at,
    }, lambda ex: _union_children(ex) | _earliest("scheduled_at")(ex) | _first_schedule(ex))


def _first_schedule(ex: Any) -> dict[str, Any]:
    """The push time and deadline of the first schedule stand (a child who joins later is
    re-sent at once: that moves neither)."""
    first: ColumnElement[bool] = or_(n.c.scheduled_at.is_(None),
                                     ex.scheduled_at < n.c.scheduled_at)
    return {name: case((first, ex[name]), else_=n.c[name])
            for name in ("recipient_role", "push_at", "deadline_at")}


async def _updated(conn: AsyncConnection, event: NotificationUpdated) -> None:
    await _upsert(conn, event, {"child_indexes": event.child_indexes,
                                "child_indexes_at": event.at}, _union_children)


async def _pushed(conn: AsyncConnection, event: NotificationPushed) -> None:
    await _upsert(conn, event, {"pushed_at": event.at}, _earliest("pushed_at"))


async def _viewed(conn: AsyncConnection, event: NotificationViewed) -> None:
    await _upsert(conn, event, {"first_viewed_at": event.at}, _earliest("first_viewed_at"))


async def _acknowledged(conn: AsyncConnection, event: NotificationAcknowledged) -> None:
    actions = [a.model_dump(mode="json") for a in event.actions]
    await _upsert(conn, event, {"acknowledged_at": event.at, "actions": actions},
                  lambda ex: _earliest("acknowledged_at")(ex) | _appended("actions")(ex))


async def _action_added(conn: AsyncConnection, event: NotificationActionAdded) -> None:
    await _upsert(conn, event, {"actions": [event.action.model_dump(mode="json")]},
                  _appended("actions"))


async def _escalated(conn: AsyncConnection, event: NotificationEscalated) -> None:
    await _upsert(conn, event, {"escalations": [{"stage": event.stage, "at": _utc(event.at)}]},
                  _appended("escalations"))


async def _retracted(conn: AsyncConnection, event: NotificationRetracted) -> None:
    if event.child_indexes:  # some children only: the notification stands for the others
        gone = [{"child_index": i, "at": _utc(event.at), "reason": event.reason}
                for i in event.child_indexes]
        await _upsert(conn, event, {"retracted_children": gone}, _appended("retracted_children"))
        return

    def first(ex: Any) -> dict[str, Any]:
        earlier = or_(n.c.retracted_at.is_(None), ex.retracted_at < n.c.retracted_at)
        return _earliest("retracted_at")(ex) | {
            "retract_reason": case((earlier, ex.retract_reason), else_=n.c.retract_reason)}

    await _upsert(conn, event, {"retracted_at": event.at, "retract_reason": event.reason}, first)


async def _child_outcome(conn: AsyncConnection, event: ChildOutcome) -> None:
    c = receipt_children
    stmt = insert(c).values(incident_id=event.incident_id, child_index=event.child_index,
                            outcome=event.outcome, school_urns=event.school_urns,
                            la_code=event.la_code, decided_at=event.at)
    ex = stmt.excluded
    # the newest decision wins: a review queued, then resolved, whichever arrives first
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[c.c.incident_id, c.c.child_index],
        set_={"outcome": ex.outcome, "school_urns": ex.school_urns, "la_code": ex.la_code,
              "decided_at": ex.decided_at},
        where=ex.decided_at >= c.c.decided_at))


APPLY: dict[type[LifecycleEvent], Callable[[AsyncConnection, Any], Awaitable[None]]] = {
    NotificationScheduled: _scheduled, NotificationUpdated: _updated,
    NotificationPushed: _pushed, NotificationViewed: _viewed,
    NotificationAcknowledged: _acknowledged, NotificationActionAdded: _action_added,
    NotificationEscalated: _escalated, NotificationRetracted: _retracted,
    ChildOutcome: _child_outcome,
}


@per_poll
async def on_lifecycle_events(envelopes: list[Envelope[Any]], *, deps: ReceiptDeps,
                              uow: UnitOfWork) -> None:
    """Merge a poll's lifecycle events into their receipts, each once and in order; their
    changes are numbered together at the end, so the force's counter (a hot row every batch of
    new incidents also takes) is locked only for the last statements of the transaction."""
    fresh = await claim_events(uow.conn, consumer=CONSUMER,
                               event_ids=[e.event_id for e in envelopes])
    changes: list[_Change] = []
    latest: dict[uuid.UUID, str] = {}  # each receipt's digest after the changes so far
    for envelope in envelopes:
        if envelope.event_id not in fresh:
            continue
        fresh.discard(envelope.event_id)  # the same event twice in one poll applies once
        event: LifecycleEvent = envelope.payload
        await APPLY[type(event)](uow.conn, event)
        change = await _change_of(uow.conn, event, change=envelope.type, latest=latest)
        if change is not None:
            changes.append(change)
            latest[change.incident_id] = change.receipt_sha256
    await _number_changes(uow.conn, changes, now=deps.clock())


@transactional
async def on_lifecycle_event(envelope: Envelope[Any], *, deps: ReceiptDeps,
                             uow: UnitOfWork) -> None:
    """Merge one lifecycle event into its incident's receipt, once."""
    await on_lifecycle_events([envelope], deps=deps, uow=uow)


async def _change_of(conn: AsyncConnection, event: LifecycleEvent, *, change: str,
                     latest: dict[uuid.UUID, str]) -> _Change | None:
    """The change this event made to its receipt, to be numbered in its force's sequence; None
    when it left the receipt as it was (compared with `latest`, else the stored receipt)."""
    incident = (await conn.execute(select(incidents).where(
        incidents.c.incident_id == event.incident_id))).first()
    force = incident.force_code if incident else getattr(event, "force_code", None)
    if force is None:  # a child's outcome for an incident not (yet) stored here: retried
        raise LookupError("lifecycle event for an incident ingest does not know")
    children, notifications = await projected_rows(conn, [event.incident_id])
    count = incident.children_count if incident else 0
    now_digest = digest(projected(count, children[event.incident_id],
                                  notifications[event.incident_id]))
    before = latest.get(event.incident_id)
    if before is None:
        before = (await conn.execute(select(receipt_incidents.c.receipt_sha256).where(
            receipt_incidents.c.incident_id == event.incident_id))).scalar()
    if before == now_digest:
        return None
    return _Change(incident, force, event.incident_id, now_digest, change, event.at)


async def note_incident_change(conn: AsyncConnection, incident_id: Any, *, change: str,
                               now: datetime) -> None:
    """Ingest's own change to one receipt (`note_incident_changes` for one incident)."""
    await note_incident_changes(conn, [incident_id], change=change, now=now)


async def note_incident_changes(conn: AsyncConnection, incident_ids: Sequence[uuid.UUID], *,
                                change: str, now: datetime) -> None:
    """Ingest's own changes to receipts (accepted, corrected, a child or the whole report
    withdrawn): numbered in each force's sequence like the notifier's, in the same transaction,
    so the force's listing and webhook show a report from the moment it is kept. A constant
    number of statements however many incidents."""
    ids = sorted(set(incident_ids))
    rows = {row.incident_id: row for row in await conn.execute(
        select(incidents).where(incidents.c.incident_id == any_(
            bindparam("ids", ids, type_=ARRAY(Uuid)))))}
    children, notifications = await projected_rows(conn, ids)
    await _number_changes(conn, [
        _Change(rows[i], rows[i].force_code, i, digest(projected(
            rows[i].children_count, children[i], notifications[i])), change, now)
        for i in ids], now=now)


@dataclass(frozen=True)
class _Change:
    incident: Any  # its ingest.incidents row, None when ingest does not hold it
    force: str
    incident_id: uuid.UUID
    receipt_sha256: str
    change: str  # what changed: the event type
    at: datetime  # when it happened


# each force's counter moves by its number of changes, forces in one order (no deadlock)
_BUMP = text("""
INSERT INTO ingest.receipt_forces AS f (force_code, last_seq)
SELECT * FROM unnest(CAST(:forces AS varchar[]), CAST(:counts AS bigint[])) ORDER BY 1
ON CONFLICT (force_code) DO UPDATE SET last_seq = f.last_seq + excluded.last_seq
RETURNING force_code, last_seq""")
_NUMBERED = text("""
INSERT INTO ingest.receipt_incidents AS r
  (incident_id, force_code, change_seq, updated_at, last_change, receipt_sha256)
SELECT i, f, s, :now, c, d FROM unnest(CAST(:ids AS uuid[]), CAST(:forces AS varchar[]),
  CAST(:seqs AS bigint[]), CAST(:digests AS varchar[]), CAST(:changes AS varchar[]))
  AS x(i, f, s, d, c) ORDER BY 1
ON CONFLICT (incident_id) DO UPDATE SET force_code = excluded.force_code,
  change_seq = excluded.change_seq, updated_at = excluded.updated_at,
  last_change = excluded.last_change, receipt_sha256 = excluded.receipt_sha256""")


async def _number_changes(conn: AsyncConnection, changes: Sequence[_Change], *,
                          now: datetime) -> None:
    """Number each change in its force's sequence (in the order given), mark its receipt with
    its last change, and queue every change for the force's webhook."""
    if not changes:
        return
    counts = CountOf(c.force for c in changes)
    forces = sorted(counts)
    top: dict[str, int] = {row.force_code: row.last_seq for row in await conn.execute(_BUMP, {
        "forces": forces, "counts": [counts[f] for f in forces]})}
    nxt = {f: top[f] - counts[f] + 1 for f in forces}
    seqs = []
    for c in changes:
        seqs.append(nxt[c.force])
        nxt[c.force] += 1
    last = {c.incident_id: (c, seq) for c, seq in zip(changes, seqs, strict=True)}
    marks = sorted(last.values(), key=lambda pair: pair[0].incident_id)
    await conn.execute(_NUMBERED, {
        "ids": [c.incident_id for c, _ in marks], "forces": [c.force for c, _ in marks],
        "seqs": [seq for _, seq in marks], "digests": [c.receipt_sha256 for c, _ in marks],
        "changes": [c.change for c, _ in marks], "now": now})
    await enqueue_deliveries(conn, [(c.incident, seq, c.change, c.at)
                                    for c, seq in zip(changes, seqs, strict=True)
                                    if c.incident is not None], now=now)


HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    cls.event_type: on_lifecycle_events for cls in APPLY}
