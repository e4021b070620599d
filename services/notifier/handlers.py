"""The notifier's consumer: matches become notifications, withdrawals cancel or retract them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.envelope import Envelope
from schemas.incidents import ChildReport, IncidentWithdrawn
from schemas.matching import ChildMatched, ChildUnmatched, IncidentFacts, SchoolMatch
from services.common.db import UnitOfWork
from services.common.errors import WaitingForFacts
from services.common.escalation import DEPUTY_AFTER_MINUTES, LA_AFTER_MINUTES
from services.common.events import transactional
from services.common.idempotency import claim_event
from services.common.pseudonym import child_key
from services.notifier.dispatch import DELIVERED, audit_sent_about, queue_email
from services.notifier.domain import (
    SchoolCalendar,
    escalation_deadlines,
    on_withdraw,
    schedule_push,
)
from services.notifier.models import (
    notification_children,
    notifications,
    notifier_withdrawn_incidents,
    school_calendar_days,
    schools,
)

log = logging.getLogger(__name__)
CONSUMER = "notifier"
LA_DAY_STARTS_AT = time(9, 0)
HOLIDAY_REASON = "school_holiday"  # why the LA hears of a matched child: school away, no cover
ABSENT_REASON = "absent_after_incident"


@dataclass
class NotifierDeps:
    """What the handlers need, wired in main.py."""

    engine: AsyncEngine
    child_key_secret: str
    clock: Callable[[], datetime]
    topic_prefix: str = ""


@dataclass(frozen=True)
class Target:
    """Who a notification goes to and when: a participating school, else its LA."""

    recipient_key: str
    school_urn: str | None
    la_code: str | None
    recipient_role: str
    push_at: datetime
    deputy_at: datetime | None = None
    la_at: datetime | None = None
    # a school on holiday without cover: the LA is told too, at this moment
    also_tell_la_at: datetime | None = None


def plan_target(
    matched_at: datetime, *, school: Mapping[str, Any] | None, la_code: str | None,
    calendar: SchoolCalendar | None = None,
) -> Target:
    """Plan delivery to a participating school (with escalations), else to the LA."""
    if school is not None and school["participates"] and school["status"] != "closed":
        starts: time = school["day_starts_at"]
        cover = any(c.get("role") == "holiday_cover" for c in school["contacts"])
        plan = schedule_push(matched_at, calendar=calendar or SchoolCalendar(),
                             day_starts_at=starts, has_holiday_cover=cover)
        deadlines = escalation_deadlines(
            plan.push_at, day_starts_at=starts,
            deputy_after=timedelta(
                minutes=school.get("deputy_after_minutes") or DEPUTY_AFTER_MINUTES),
            la_after=timedelta(minutes=school.get("la_after_minutes") or LA_AFTER_MINUTES),
        )
        return Target(f"school:{school['urn']}", school["urn"], school["la_code"],
                      plan.recipient_role, plan.push_at, deadlines.deputy_at, deadlines.la_at,
                      plan.also_tell_la_at)
    la = school["la_code"] if school is not None else la_code
    plan = schedule_push(matched_at, calendar=SchoolCalendar(), day_starts_at=LA_DAY_STARTS_AT,
                         has_holiday_cover=False)
    return la_target(la, plan.push_at)


def la_target(la_code: str | None, push_at: datetime) -> Target:
    """A notification for the LA's safeguarding contact, pushed at `push_at`."""
    return Target(f"la:{la_code or 'unknown'}", None, la_code, "safeguarding", push_at)


@transactional
async def on_child_matched(envelope: Envelope[Any], *, deps: NotifierDeps,
                           uow: UnitOfWork) -> None:
    """Add the child to one notification per (incident, school) it is on the roll of."""
    event: ChildMatched = envelope.payload
    if not await _claim(uow.conn, envelope, event.incident.incident_id):
        return
    for match in event.schools:
        school = await _school(uow.conn, match)
        if school is None:
            # the matcher announced the school on registry.v1 before matching to it; our
            # copy is behind: wait for it rather than send the child to the wrong desk
            raise WaitingForFacts(f"school {match.urn} not yet in the notifier's registry")
        target = plan_target(event.matched_at, school=school, la_code=match.la_code,
                             calendar=await _calendar(uow.conn, match.urn))
        await _add(uow.conn, deps, event.incident, target, event.child_id, event.child)
        if target.also_tell_la_at is not None:
            await _add(uow.conn, deps, event.incident,
                       la_target(target.la_code, target.also_tell_la_at),
                       event.child_id, event.child, reason=HOLIDAY_REASON)


@transactional
async def on_child_unmatched(envelope: Envelope[Any], *, deps: NotifierDeps,
                             uow: UnitOfWork) -> None:
    """Tell the LA's safeguarding contact about a child on no roll."""
    event: ChildUnmatched = envelope.payload
    if await _claim(uow.conn, envelope, event.incident.incident_id):
        target = plan_target(event.decided_at, school=None, la_code=event.la_code)
        await _add(uow.conn, deps, event.incident, target, event.child_id, event.child,
                   reason=event.reason)


@transactional
async def on_incident_withdrawn(envelope: Envelope[Any], *, deps: NotifierDeps,
                                uow: UnitOfWork) -> None:
    """Cancel notifications not yet sent; retract sent ones with a content-free notice."""
    event: IncidentWithdrawn = envelope.payload
    now, conn = deps.clock(), uow.conn
    if not await claim_event(conn, consumer=CONSUMER, event_id=envelope.event_id):
        return
    await conn.execute(insert(notifier_withdrawn_incidents).values(
        incident_id=event.incident_id, withdrawn_at=event.withdrawn_at,
    ).on_conflict_do_nothing())
    rows = (await conn.execute(
        select(notifications).where(notifications.c.incident_id == event.incident_id)
        .with_for_update())).all()
    for row in rows:
        if row.state not in DELIVERED and row.state != "scheduled":
            continue
        state = on_withdraw(row.state)
        await conn.execute(update(notifications).where(notifications.c.id == row.id)
                           .values(state=state, closed_at=now))
        if state == "retracted":
            await queue_email(conn, kind="retraction", school_urn=row.school_urn,
                              la_code=row.la_code, recipient_role=row.recipient_role,
                              notification_ids=[row.id], now=now)
            await audit_sent_about(conn, topic_prefix=deps.topic_prefix, notification=row,
                                   action="notification.retracted", at=now,
                                   purpose="police withdrew the incident")


async def _claim(conn: AsyncConnection, envelope: Envelope[Any], incident_id: uuid.UUID) -> bool:
    if not await claim_event(conn, consumer=CONSUMER, event_id=envelope.event_id):
        return False
    gone = await conn.execute(select(notifier_withdrawn_incidents.c.incident_id).where(
        notifier_withdrawn_incidents.c.incident_id == incident_id))
    return gone.first() is None


async def _school(conn: AsyncConnection, match: SchoolMatch) -> Mapping[str, Any] | None:
    row = (await conn.execute(select(schools).where(schools.c.urn == match.urn))).first()
    return None if row is None else dict(row._mapping)


async def _calendar(conn: AsyncConnection, urn: str) -> SchoolCalendar:
    rows = await conn.execute(select(school_calendar_days.c.day, school_calendar_days.c.kind)
                              .where(school_calendar_days.c.urn == urn))
    return SchoolCalendar.from_overrides((row.day, row.kind) for row in rows)


async def tell_la_child_absent(
    conn: AsyncConnection, deps: NotifierDeps, *, notification: Mapping[str, Any],
    children: Sequence[Mapping[str, Any]], reason: str = ABSENT_REASON,
) -> None:
    """The school reports the child(ren) absent the morning after (or nobody said whether they
    came, `reason`): the LA hears at once."""
    incident = IncidentFacts.model_validate(notification["incident"])
    target = la_target(notification["la_code"], deps.clock())
    for child in children:
        await _add(conn, deps, incident, target, child["child_id"],
                   ChildReport.model_validate(child["child"]), reason=reason)


async def _add(
    conn: AsyncConnection, deps: NotifierDeps, incident: IncidentFacts, target: Target,
    child_id: uuid.UUID, child: ChildReport, *, reason: str | None = None,
) -> None:
    now = deps.clock()
    await conn.execute(insert(notifications).values(
        id=uuid.uuid4(), incident_id=incident.incident_id, recipient_key=target.recipient_key,
        school_urn=target.school_urn, la_code=target.la_code,
        recipient_role=target.recipient_role, state="scheduled",
        incident=incident.model_dump(mode="json"), push_at=target.push_at,
        deputy_at=target.deputy_at, la_at=target.la_at, created_at=now,
    ).on_conflict_do_nothing())
    row = (await conn.execute(select(notifications.c.id, notifications.c.state).where(
        notifications.c.incident_id == incident.incident_id,
        notifications.c.recipient_key == target.recipient_key))).one()
    key = child_key(deps.child_key_secret, given_name=child.given_name,
                    family_name=child.family_name, date_of_birth=child.date_of_birth)
    added = await conn.execute(insert(notification_children).values(
        notification_id=row.id, child_id=child_id, child_key=key,
        child=child.model_dump(mode="json"), unmatched_reason=reason,
    ).on_conflict_do_nothing().returning(notification_children.c.child_id))
    if added.first() is not None and row.state in DELIVERED:
        # a child decided later (after review) joins a notification already pushed: push again
        await queue_email(conn, kind="notice", school_urn=target.school_urn,
                          la_code=target.la_code, recipient_role=target.recipient_role,
                          notification_ids=[row.id], now=now)


HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "ChildMatched": on_child_matched,
    "ChildUnmatched": on_child_unmatched,
    "IncidentWithdrawn": on_incident_withdrawn,
}
