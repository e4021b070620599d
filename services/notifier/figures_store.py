"""The figures' read model: `notifications.v1` into rows of codes and times, and back out.

Every handler is an upsert that keeps the first time a thing happened (LEAST ignores NULLs) or,
for a child's outcome, the latest decision: applying an event twice changes nothing, and events
of one notification may arrive in any order (a push before its schedule fills the same row).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Uuid,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.envelope import Envelope
from schemas.notifications import (
    Action,
    ChildOutcome,
    NotificationAcknowledged,
    NotificationActionAdded,
    NotificationEscalated,
    NotificationPushed,
    NotificationRetracted,
    NotificationScheduled,
    NotificationViewed,
)
from services.common.db import UnitOfWork, insert_json_rows, json_rows_param, metadata
from services.common.events import per_poll, transactional
from services.notifier.figures import ActionRow, ChildRow, NotificationRow, ReviewRow, Rows

_AT = DateTime(timezone=True)
figures_notifications = Table(
    "figures_notifications", metadata,
    Column("notification_id", Uuid, primary_key=True),
    Column("incident_id", Uuid, nullable=False),
    Column("force_code", String(10), nullable=False),
    Column("la_code", String(8)),
    Column("school_urn", String(7)),
    Column("recipient_role", String(8)),
    Column("scheduled_at", _AT),
    Column("last_scheduled_at", _AT),
    Column("push_at", _AT),
    Column("deadline_at", _AT),
    Column("repeat_children", Integer, nullable=False, server_default="0"),
    # each NotificationScheduled's count by its first child's index: the notifier announces a
    # child who joins a notification with one more event of its own (schemas/notifications.py),
    # so the total is their sum, and a redelivered event overwrites its own entry alone
    Column("repeats", JSONB, nullable=False, server_default="{}"),
    *(Column(f"{what}_at", _AT) for what in (
        "pushed", "viewed", "acknowledged", "escalated_deputy", "escalated_la", "retracted")),
    schema="notifier",
)
figures_actions = Table(
    "figures_actions", metadata,
    Column("event_id", Uuid, nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("notification_id", Uuid, nullable=False, index=True),
    Column("action_type", String(32), nullable=False),
    Column("action_on", Date, nullable=False),
    Column("recorded_at", _AT, nullable=False),
    PrimaryKeyConstraint("event_id", "position"),
    schema="notifier",
)
figures_children = Table(
    "figures_children", metadata,
    Column("incident_id", Uuid, nullable=False),
    Column("child_index", Integer, nullable=False),
    Column("force_code", String(10)),
    Column("la_code", String(8)),
    Column("outcome", String(10), nullable=False),
    Column("decided_by", String(8)),
    Column("decided_at", _AT, nullable=False),
    PrimaryKeyConstraint("incident_id", "child_index"),
    schema="notifier",
)
figures_reviews = Table(
    "figures_reviews", metadata,
    Column("review_id", Uuid, primary_key=True),
    Column("incident_id", Uuid, nullable=False),
    Column("child_index", Integer, nullable=False),
    Column("force_code", String(10)),
    Column("la_code", String(8)),
    Column("opened_at", _AT),
    Column("resolved_at", _AT),
    schema="notifier",
)


@dataclass
class FiguresDeps:
    """The notifier's engine: all the read model needs."""

    engine: AsyncEngine


def _first(table: Table, stmt: Any, name: str) -> Any:
    """The earlier of the stored and the incoming time (either may be NULL)."""
    return func.least(table.c[name], stmt.excluded[name])


def _known(table: Table, stmt: Any, name: str) -> Any:
    """The incoming value, or the stored one when the event does not say."""
    return func.coalesce(stmt.excluded[name], table.c[name])


def _rounds(rows: list[dict[str, Any]], *key: str) -> list[list[dict[str, Any]]]:
    """Rows split into statements that touch each row once (ON CONFLICT DO UPDATE cannot
    touch one twice), a key's rows in their order: its first in the first, and so on."""
    seen: dict[tuple[Any, ...], int] = {}
    rounds: list[list[dict[str, Any]]] = []
    for row in rows:
        k = tuple(row[name] for name in key)
        n = seen[k] = seen.get(k, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(row)
    return rounds


def _row(event: Any, **values: Any) -> dict[str, Any]:
    """What an event says of its notification's row."""
    return {"notification_id": event.notification_id, "incident_id": event.incident_id,
            "force_code": event.force_code, "la_code": event.la_code,
            "school_urn": event.school_urn, **values}


async def _notification(conn: AsyncConnection, event: Any, **values: Any) -> None:
    """Fill one notification's row with what an event says of it."""
    await _notifications(conn, [_row(event, **values)])


async def _notifications(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Fill notifications' rows, each with what one event says of it (every row the same
    columns): one statement per round, however many rows."""
    for batch in _rounds(rows, "notification_id"):
        # one execution for the round's rows, one text per event type whatever their number
        await conn.execute(_notifications_upsert(tuple(batch[0])), json_rows_param(batch))


@functools.cache
def _notifications_upsert(names: tuple[str, ...]) -> Any:
    """The upsert of notifications' rows that say these columns: built once per set of
    columns (a few event types), since building it was half the projection's CPU."""
    t = figures_notifications
    values = [name for name in names if name not in _IDENTITY]
    stmt = insert_json_rows(t, names)
    set_: dict[str, Any] = {c: _known(t, stmt, c) for c in ("la_code", "school_urn")}
    for name in values:
        set_[name] = _first(t, stmt, name) if name.endswith("_at") else stmt.excluded[name]
    if "last_scheduled_at" in values:
        # the first schedule sets the push time and the deadline the figures hold it to (a
        # child who joins later, re-sent at once, does not move them); whichever arrives
        # first
        first = or_(t.c.scheduled_at.is_(None),
                    stmt.excluded.scheduled_at < t.c.scheduled_at)
        for name in ("recipient_role", "push_at", "deadline_at"):
            set_[name] = case((first, stmt.excluded[name]), else_=t.c[name])
        merged = t.c.repeats.op("||")(stmt.excluded.repeats)
        set_["repeats"] = merged
        set_["repeat_children"] = (
            select(func.coalesce(func.sum(text("value::int")), 0))
            .select_from(func.jsonb_each_text(merged).table_valued("key", "value"))
            .scalar_subquery())
        set_["last_scheduled_at"] = func.greatest(t.c.last_scheduled_at,
                                                  stmt.excluded.last_scheduled_at)
    return stmt.on_conflict_do_update(index_elements=["notification_id"], set_=set_)


_IDENTITY = frozenset(("notification_id", "incident_id", "force_code", "la_code", "school_urn"))


async def _actions(conn: AsyncConnection, envelope: Envelope[Any], actions: list[Action]
                   ) -> None:
    """The actions an event carries, keyed by the event and their place in it."""
    if not actions:
        return
    event = envelope.payload
    rows = [{"event_id": envelope.event_id, "position": i, "notification_id":
             event.notification_id, "action_type": a.type, "action_on": a.on,
             "recorded_at": event.at} for i, a in enumerate(actions)]
    await conn.execute(upsert(figures_actions).values(rows).on_conflict_do_nothing())


def _scheduled_row(e: NotificationScheduled) -> dict[str, Any]:
    """A notification exists: when, its deadline, how many of its children were told before."""
    return _row(e, scheduled_at=e.at, last_scheduled_at=e.at, recipient_role=e.recipient_role,
                push_at=e.push_at, deadline_at=e.deadline_at,
                repeat_children=e.repeat_children,
                repeats={str(min(e.child_indexes)): e.repeat_children})


@per_poll
async def on_scheduled_and_outcomes(envelopes: list[Envelope[Any]], *, deps: FiguresDeps,
                                    uow: UnitOfWork) -> None:
    """NotificationScheduled and ChildOutcome, the run's many in a few statements: the two
    fill different tables, and within each a row's events keep their order."""
    scheduled = [e.payload for e in envelopes if e.type == "NotificationScheduled"]
    outcomes = [e.payload for e in envelopes if e.type == "ChildOutcome"]
    if scheduled:
        await _notifications(uow.conn, [_scheduled_row(e) for e in scheduled])
    if outcomes:
        await _child_outcomes(uow.conn, outcomes)


@transactional
async def on_pushed(envelope: Envelope[Any], *, deps: FiguresDeps, uow: UnitOfWork) -> None:
    """The recipient was first told."""
    e: NotificationPushed = envelope.payload
    await _notification(uow.conn, e, pushed_at=e.at)


@transactional
async def on_viewed(envelope: Envelope[Any], *, deps: FiguresDeps, uow: UnitOfWork) -> None:
    """The recipient first opened it."""
    e: NotificationViewed = envelope.payload
    await _notification(uow.conn, e, viewed_at=e.at)


@transactional
async def on_acknowledged(envelope: Envelope[Any], *, deps: FiguresDeps, uow: UnitOfWork
                          ) -> None:
    """Acknowledged, with the actions taken."""
    e: NotificationAcknowledged = envelope.payload
    await _notification(uow.conn, e, acknowledged_at=e.at)
    await _actions(uow.conn, envelope, e.actions)


@transactional
async def on_action_added(envelope: Envelope[Any], *, deps: FiguresDeps, uow: UnitOfWork
                          ) -> None:
    """A follow-up action."""
    e: NotificationActionAdded = envelope.payload
    await _notification(uow.conn, e)
    await _actions(uow.conn, envelope, [e.action])


@transactional
async def on_escalated(envelope: Envelope[Any], *, deps: FiguresDeps, uow: UnitOfWork) -> None:
    """Escalated to the deputy DSL or to the LA."""
    e: NotificationEscalated = envelope.payload
    await _notification(uow.conn, e, **{f"escalated_{e.stage}_at": e.at})


@transactional
async def on_retracted(envelope: Envelope[Any], *, deps: FiguresDeps, uow: UnitOfWork) -> None:
    """Withdrawn whole (no longer counted); one child withdrawn leaves the notification."""
    e: NotificationRetracted = envelope.payload
    await _notification(uow.conn, e, **({} if e.child_indexes else {"retracted_at": e.at}))


async def _child_outcomes(conn: AsyncConnection, events: list[ChildOutcome]) -> None:
    """Where each child ended (the latest decision wins), and the review it waited in."""
    rows = [{"incident_id": e.incident_id, "child_index": e.child_index,
             "force_code": e.force_code, "la_code": e.la_code, "outcome": e.outcome,
             "decided_by": e.decided_by, "decided_at": e.at} for e in events]
    for batch in _rounds(rows, "incident_id", "child_index"):
        await conn.execute(_CHILDREN_UPSERT, json_rows_param(batch))
    reviews = [_review_row(e) for e in events if e.review_id is not None]
    for batch in _rounds(reviews, "review_id"):
        # a round touches each review once: split by what its events say, order unchanged
        for when in sorted({tuple(k for k in row if k.endswith("_at")) for row in batch}):
            await _reviews(conn, [row for row in batch
                                  if tuple(k for k in row if k.endswith("_at")) == when])


def _review_row(e: ChildOutcome) -> dict[str, Any]:
    when = ({"opened_at": e.at} if e.outcome == "review" and e.decided_by != "review"
            else {"resolved_at": e.at} if e.decided_by == "review" else {})
    return {"review_id": e.review_id, "incident_id": e.incident_id,
            "child_index": e.child_index, "force_code": e.force_code, "la_code": e.la_code,
            **when}


def _children_upsert() -> Any:
    t = figures_children
    names = ("incident_id", "child_index", "force_code", "la_code", "outcome", "decided_by",
             "decided_at")
    stmt = insert_json_rows(t, names)
    later = stmt.excluded.decided_at >= t.c.decided_at
    return stmt.on_conflict_do_update(index_elements=["incident_id", "child_index"], set_={
        "force_code": _known(t, stmt, "force_code"),
        **{c: case((later, stmt.excluded[c]), else_=t.c[c])
           for c in ("la_code", "outcome", "decided_by")},
        "decided_at": func.greatest(t.c.decided_at, stmt.excluded.decided_at)})


_CHILDREN_UPSERT = _children_upsert()


async def _reviews(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await conn.execute(_reviews_upsert(tuple(rows[0])), json_rows_param(rows))


@functools.cache
def _reviews_upsert(names: tuple[str, ...]) -> Any:
    t = figures_reviews
    when = [name for name in names if name.endswith("_at")]
    stmt = insert_json_rows(t, names)
    return stmt.on_conflict_do_update(index_elements=["review_id"], set_={
        **{c: _known(t, stmt, c) for c in ("force_code", "la_code")},
        **{name: _first(t, stmt, name) for name in when}})


HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "NotificationScheduled": on_scheduled_and_outcomes,
    "NotificationPushed": on_pushed,
    "NotificationViewed": on_viewed,
    "NotificationAcknowledged": on_acknowledged,
    "NotificationActionAdded": on_action_added,
    "NotificationEscalated": on_escalated,
    "NotificationRetracted": on_retracted,
    "ChildOutcome": on_scheduled_and_outcomes,
}


async def load_rows(conn: AsyncConnection, *, la_codes: Collection[str], since: datetime,
                    until: datetime, force_code: str | None = None) -> Rows:
    """The rows of the LAs (and force) between two moments, as the figures read them (a review
    opened before `since` and resolved after it counts only as resolved: the figures show the
    weeks asked for)."""
    n, a, c, r = figures_notifications, figures_actions, figures_children, figures_reviews

    def chosen(table: Table) -> Any:
        force = table.c.force_code == force_code if force_code else literal(True)
        return and_(table.c.la_code.in_(list(la_codes)), force)

    counted = and_(chosen(n), n.c.scheduled_at >= since, n.c.scheduled_at < until,
                   n.c.retracted_at.is_(None))
    note_cols = [n.c[f] for f in NotificationRow.__dataclass_fields__]
    notes = (await conn.execute(select(*note_cols).where(counted))).all()
    acts = (await conn.execute(select(n.c.la_code, n.c.force_code, n.c.scheduled_at,
                                      a.c.action_type)
                               .join(n, n.c.notification_id == a.c.notification_id)
                               .where(counted))).all()
    kids = (await conn.execute(select(c.c.la_code, c.c.force_code, c.c.outcome, c.c.decided_at)
                               .where(chosen(c), c.c.decided_at >= since,
                                      c.c.decided_at < until))).all()
    revs = (await conn.execute(select(r.c.la_code, r.c.force_code, r.c.opened_at, r.c.resolved_at)
                               .where(chosen(r), or_(
                                   and_(r.c.opened_at >= since, r.c.opened_at < until),
                                   and_(r.c.resolved_at >= since, r.c.resolved_at < until)))
                               )).all()
    return Rows(notifications=[NotificationRow(*row) for row in notes],
                actions=[ActionRow(*row) for row in acts],
                children=[ChildRow(*row) for row in kids],
                reviews=[ReviewRow(*row) for row in revs])


async def forces_of(conn: AsyncConnection, la_codes: Collection[str]) -> list[str]:
    """The forces that have told the LAs' schools or the LAs of anything."""
    n = figures_notifications
    rows = await conn.execute(select(n.c.force_code).distinct()
                              .where(n.c.la_code.in_(list(la_codes))).order_by(n.c.force_code))
    return [row.force_code for row in rows]
