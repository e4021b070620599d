"""Ingest's projection of `notifications.v1` into the police's receipts.

Each event is applied once (its `event_id` claimed in the same transaction) and merged so that
order does not matter: first-time facts keep the earliest time (`LEAST` skips NULLs), lists
grow, children follow the newest event that set them. A change that alters the receipt bumps
the force's change counter, whose row lock orders a force's changes by commit, so a reader
paging by it never skips one committed late; the force's webhook gets it in the same
transaction.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter as CountOf
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Uuid, case, func, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
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
from services.common.db import UnitOfWork, any_of, insert_json_rows, json_rows_param
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


def _notification_merge(merge: Merge) -> Callable[[tuple[str, ...]], Any]:
    """One kind of event's upsert into its notification's receipt row: built once for the
    columns its events say, and run once for a round's events (their rows as one JSON
    parameter, services/common/db.py insert_json_rows), where an executemany ran it once an
    event."""

    @functools.cache
    def build(names: tuple[str, ...]) -> Any:
        stmt = insert_json_rows(n, names)
        ex = stmt.excluded
        return stmt.on_conflict_do_update(index_elements=[n.c.notification_id], set_={
            "school_urn": func.coalesce(ex.school_urn, n.c.school_urn),
            "la_code": func.coalesce(ex.la_code, n.c.la_code), **merge(ex)}).returning(*n.c)

    return build


def _first_schedule(ex: Any) -> dict[str, Any]:
    """The push time and deadline of the first schedule stand (a child who joins later is
    re-sent at once: that moves neither)."""
    first: ColumnElement[bool] = or_(n.c.scheduled_at.is_(None),
                                     ex.scheduled_at < n.c.scheduled_at)
    return {name: case((first, ex[name]), else_=n.c[name])
            for name in ("recipient_role", "push_at", "deadline_at")}


def _first_retraction(ex: Any) -> dict[str, Any]:
    earlier = or_(n.c.retracted_at.is_(None), ex.retracted_at < n.c.retracted_at)
    return _earliest("retracted_at")(ex) | {
        "retract_reason": case((earlier, ex.retract_reason), else_=n.c.retract_reason)}


@functools.cache
def _child_merge(names: tuple[str, ...]) -> Any:
    c = receipt_children
    stmt = insert_json_rows(c, names)
    ex = stmt.excluded
    # the newest decision wins: a review queued, then resolved, whichever arrives first
    return stmt.on_conflict_do_update(
        index_elements=[c.c.incident_id, c.c.child_index],
        set_={"outcome": ex.outcome, "school_urns": ex.school_urns, "la_code": ex.la_code,
              "decided_at": ex.decided_at},
        where=ex.decided_at >= c.c.decided_at).returning(*c.c)


_MERGES: dict[str, Callable[[tuple[str, ...]], Any]] = {
    "scheduled": _notification_merge(
        lambda ex: _union_children(ex) | _earliest("scheduled_at")(ex) | _first_schedule(ex)),
    "updated": _notification_merge(_union_children),
    "pushed": _notification_merge(_earliest("pushed_at")),
    "viewed": _notification_merge(_earliest("first_viewed_at")),
    "acknowledged": _notification_merge(
        lambda ex: _earliest("acknowledged_at")(ex) | _appended("actions")(ex)),
    "action_added": _notification_merge(_appended("actions")),
    "escalated": _notification_merge(_appended("escalations")),
    "retracted_children": _notification_merge(_appended("retracted_children")),
    "retracted": _notification_merge(_first_retraction),
    "child": _child_merge,
}


def _on_notification(event: Any, **values: Any) -> dict[str, Any]:
    return {"notification_id": event.notification_id, "incident_id": event.incident_id,
            "school_urn": event.school_urn, "la_code": event.la_code,
            "recipient_role": "school" if event.school_urn else "la"} | values


def _scheduled(event: NotificationScheduled) -> tuple[str, dict[str, Any]]:
    return "scheduled", _on_notification(
        event, recipient_role=event.recipient_role, child_indexes=event.child_indexes,
        child_indexes_at=event.at, scheduled_at=event.at, push_at=event.push_at,
        deadline_at=event.deadline_at)


def _updated(event: NotificationUpdated) -> tuple[str, dict[str, Any]]:
    return "updated", _on_notification(event, child_indexes=event.child_indexes,
                                       child_indexes_at=event.at)


def _pushed(event: NotificationPushed) -> tuple[str, dict[str, Any]]:
    return "pushed", _on_notification(event, pushed_at=event.at)


def _viewed(event: NotificationViewed) -> tuple[str, dict[str, Any]]:
    return "viewed", _on_notification(event, first_viewed_at=event.at)


def _acknowledged(event: NotificationAcknowledged) -> tuple[str, dict[str, Any]]:
    return "acknowledged", _on_notification(
        event, acknowledged_at=event.at,
        actions=[a.model_dump(mode="json") for a in event.actions])


def _action_added(event: NotificationActionAdded) -> tuple[str, dict[str, Any]]:
    return "action_added", _on_notification(
        event, actions=[event.action.model_dump(mode="json")])


def _escalated(event: NotificationEscalated) -> tuple[str, dict[str, Any]]:
    return "escalated", _on_notification(
        event, escalations=[{"stage": event.stage, "at": _utc(event.at)}])


def _retracted(event: NotificationRetracted) -> tuple[str, dict[str, Any]]:
    if event.child_indexes:  # some children only: the notification stands for the others
        return "retracted_children", _on_notification(event, retracted_children=[
            {"child_index": i, "at": _utc(event.at), "reason": event.reason}
            for i in event.child_indexes])
    return "retracted", _on_notification(event, retracted_at=event.at,
                                         retract_reason=event.reason)


def _child_outcome(event: ChildOutcome) -> tuple[str, dict[str, Any]]:
    return "child", {"incident_id": event.incident_id, "child_index": event.child_index,
                     "outcome": event.outcome, "school_urns": event.school_urns,
                     "la_code": event.la_code, "decided_at": event.at}


# each event type: which merge it takes, with what parameters
APPLY: dict[type[LifecycleEvent], Callable[[Any], tuple[str, dict[str, Any]]]] = {
    NotificationScheduled: _scheduled, NotificationUpdated: _updated,
    NotificationPushed: _pushed, NotificationViewed: _viewed,
    NotificationAcknowledged: _acknowledged, NotificationActionAdded: _action_added,
    NotificationEscalated: _escalated, NotificationRetracted: _retracted,
    ChildOutcome: _child_outcome,
}


@per_poll
async def on_lifecycle_events(envelopes: list[Envelope[Any]], *, deps: ReceiptDeps,
                              uow: UnitOfWork) -> None:
    """Merge a poll's lifecycle events into their receipts, each once and in order, with a
    number of statements that grows with the most events one incident has in the poll, not
    with the poll: round k applies every incident's k-th event, one statement per kind of
    event, whose `RETURNING` keeps the receipts read once at the start up to date. Each
    event's change to its receipt is seen as if the events came one by one. The changes are
    numbered together at the end, so the force's counter (a hot row every batch of new
    incidents also takes) is locked only for the last statements of the transaction."""
    fresh = await claim_events(uow.conn, consumer=CONSUMER,
                               event_ids=[e.event_id for e in envelopes])
    rounds: list[list[tuple[int, Envelope[Any]]]] = []
    seen: CountOf[uuid.UUID] = CountOf()
    for position, envelope in enumerate(envelopes):
        if envelope.event_id not in fresh:
            continue
        fresh.discard(envelope.event_id)  # the same event twice in one poll applies once
        incident_id = envelope.payload.incident_id
        if seen[incident_id] == len(rounds):
            rounds.append([])
        rounds[seen[incident_id]].append((position, envelope))
        seen[incident_id] += 1
    if not rounds:
        return
    ids = sorted(seen)
    known = {row.incident_id: row for row in await uow.conn.execute(
        select(incidents).where(incidents.c.incident_id == any_of(ids, of=Uuid)))}
    latest: dict[uuid.UUID, str | None] = dict.fromkeys(ids)  # each receipt's digest so far
    latest |= {row.incident_id: row.receipt_sha256 for row in await uow.conn.execute(
        select(receipt_incidents.c.incident_id, receipt_incidents.c.receipt_sha256).where(
            receipt_incidents.c.incident_id == any_of(ids, of=Uuid)))}
    receipts = await _Receipts.read(uow.conn, ids)
    changes: list[tuple[int, _Change]] = []
    for one_round in rounds:
        changes += await _apply_round(uow.conn, one_round, known, latest, receipts)
    await _number_changes(uow.conn, [change for _, change in sorted(changes)],
                          now=deps.clock())


@dataclass
class _Receipts:
    """The poll's incidents' receipt rows, read once and kept up to date from each merge's
    `RETURNING`: each event's digest is of the receipt as that event left it, without reading
    every round's receipts back."""

    children: dict[uuid.UUID, dict[int, Any]]
    notifications: dict[uuid.UUID, dict[uuid.UUID, Any]]

    @classmethod
    async def read(cls, conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> _Receipts:
        children, notifications = await projected_rows(conn, ids)
        return cls({i: {row.child_index: row for row in rows} for i, rows in children.items()},
                   {i: {row.notification_id: row for row in rows}
                    for i, rows in notifications.items()})

    def merged(self, kind: str, rows: Sequence[Any]) -> None:
        """The rows a merge of this kind wrote (a merge whose guard kept the row returns
        none: it is as it was)."""
        for row in rows:
            if kind == "child":
                self.children.setdefault(row.incident_id, {})[row.child_index] = row
            else:
                self.notifications.setdefault(row.incident_id, {})[row.notification_id] = row

    def digest(self, incident_id: uuid.UUID, children_count: int) -> str:
        return digest(projected(children_count,
                                list(self.children.get(incident_id, {}).values()),
                                list(self.notifications.get(incident_id, {}).values())))


async def _apply_round(conn: AsyncConnection, events: list[tuple[int, Envelope[Any]]],
                       known: dict[uuid.UUID, Any], latest: dict[uuid.UUID, str | None],
                       receipts: _Receipts) -> list[tuple[int, _Change]]:
    """Apply one event of each of these incidents, and say what each changed (by its place in
    the poll); `latest` and `receipts` are brought up to date."""
    by_kind: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for _, envelope in events:
        event = envelope.payload
        if event.incident_id not in known and getattr(event, "force_code", None) is None:
            # a child's outcome for an incident not (yet) stored here: the poll is retried
            raise LookupError("lifecycle event for an incident ingest does not know")
        kind, params = APPLY[type(event)](event)
        by_kind.setdefault((kind, tuple(params)), []).append(params)
    for (kind, names), rows in by_kind.items():
        receipts.merged(kind, (await conn.execute(_MERGES[kind](names),
                                                  json_rows_param(rows))).all())
    out = []
    for position, envelope in events:
        event = envelope.payload
        incident = known.get(event.incident_id)
        now_digest = receipts.digest(event.incident_id,
                                     incident.children_count if incident else 0)
        if latest[event.incident_id] == now_digest:
            continue
        latest[event.incident_id] = now_digest
        force = incident.force_code if incident else event.force_code
        out.append((position, _Change(incident, force, event.incident_id, now_digest,
                                      envelope.type, event.at)))
    return out


@transactional
async def on_lifecycle_event(envelope: Envelope[Any], *, deps: ReceiptDeps,
                             uow: UnitOfWork) -> None:
    """Merge one lifecycle event into its incident's receipt, once."""
    await on_lifecycle_events([envelope], deps=deps, uow=uow)


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
        select(incidents).where(incidents.c.incident_id == any_of(ids, of=Uuid)))}
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
