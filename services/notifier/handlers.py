"""The notifier's consumer: matches become notifications, reviews are chased, withdrawals cancel
or retract them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.disclosures import Channel
from schemas.envelope import Envelope
from schemas.incidents import ChildReport, IncidentWithdrawn
from schemas.matching import ChildMatched, ChildUnmatched, IncidentFacts, SchoolMatch
from services.common.db import UnitOfWork
from services.common.disclosure import record_disclosure
from services.common.errors import WaitingForFacts
from services.common.escalation import (
    DEPUTY_AFTER_MINUTES,
    ESCALATION_BEFORE_MINUTES,
    LA_AFTER_MINUTES,
    LA_DAY_STARTS_AT,
)
from services.common.events import transactional
from services.common.idempotency import claim_event
from services.common.pseudonym import Secrets, child_key
from services.common.security import Principal
from services.notifier import corrections
from services.notifier.announce import (
    announce_scheduled,
    announce_withdrawn,
    child_index_of,
    matched_outcome,
    unmatched_outcome,
)
from services.notifier.chain import DELIVERED
from services.notifier.content import (
    opened_children,
    opened_notification,
    seal_child,
    seal_incident,
)
from services.notifier.domain import (
    SchoolCalendar,
    escalation_deadlines,
    on_withdraw,
    schedule_push,
)
from services.notifier.lifecycle import stage
from services.notifier.models import (
    notification_children,
    notifications,
    notifier_withdrawn_incidents,
    school_calendar_days,
    schools,
)
from services.notifier.outgoing import (
    OUTBOX_SOURCE,
    audit_sent_about,
    escalation_before,
    queue_email,
)
from services.notifier.review_alerts import resolve_incident_reviews, resolve_review
from services.notifier.scheduling import duty_call_at, la_deadline
from services.notifier.settings import SERVICE_DESK_EMAIL

log = logging.getLogger(__name__)
CONSUMER = "notifier"
HOLIDAY_REASON = "school_holiday"  # why the LA hears of a matched child: the school is away
ABSENT_REASON = "absent_after_incident"
DEFAULT_BEFORE = timedelta(minutes=ESCALATION_BEFORE_MINUTES)


@dataclass
class NotifierDeps:
    """What the handlers need, wired in main.py."""

    engine: AsyncEngine
    child_key_secret: Secrets  # every secret, the current first (pseudonym.ChildKeySecrets)
    clock: Callable[[], datetime]
    topic_prefix: str = ""
    service_desk: str = SERVICE_DESK_EMAIL


@dataclass(frozen=True)
class Target:
    """Who a notification goes to and when: a school that can take it, else its LA."""

    recipient_key: str
    school_urn: str | None
    la_code: str | None
    recipient_role: str
    push_at: datetime
    deputy_at: datetime | None = None
    la_at: datetime | None = None
    # a school on holiday: the LA is told too, at this moment
    also_tell_la_at: datetime | None = None
    # a school on holiday with cover: its DSL is told on the first school day back
    then: Target | None = None
    deadline_at: datetime | None = None  # by when its first owner must act
    duty_at: datetime | None = None  # an LA's: when its duty manager is first called
    # why a matched child reaches the LA instead of its school, and through which school
    reason: str | None = None
    via_school_urn: str | None = None
    via_school_name: str | None = None
    day_starts_at: time | None = None  # a school's: its school day starts then


def school_unable(school: Mapping[str, Any]) -> str | None:
    """Why a school cannot take a notification (its children go to the LA), or None."""
    if school["status"] == "closed":
        return "school_closed"
    if not school["participates"]:
        return "school_not_participating"
    if not any(c.get("role") == "dsl" and c.get("email") for c in school["contacts"]):
        return "school_not_ready"  # nobody at the school to tell
    return None


def plan_target(
    matched_at: datetime, *, school: Mapping[str, Any] | None, la_code: str | None,
    calendar: SchoolCalendar | None = None, before: timedelta = DEFAULT_BEFORE,
) -> Target:
    """Plan delivery to a school that can take it (with escalations), else to the LA."""
    reason = school_unable(school) if school is not None else None
    if school is not None and reason is None:
        starts: time = school["day_starts_at"]
        cover = any(c.get("role") == "holiday_cover" for c in school["contacts"])
        plan = schedule_push(matched_at, calendar=calendar or SchoolCalendar(),
                             day_starts_at=starts, has_holiday_cover=cover)
        def at_school(key: str, role: str, push_at: datetime) -> Target:
            deadlines = escalation_deadlines(
                push_at, day_starts_at=starts,
                deputy_after=timedelta(
                    minutes=school.get("deputy_after_minutes") or DEPUTY_AFTER_MINUTES),
                la_after=timedelta(minutes=school.get("la_after_minutes") or LA_AFTER_MINUTES),
            )
            return Target(key, school["urn"], school["la_code"], role, push_at,
                          deadlines.deputy_at, deadlines.la_at, deadline_at=deadlines.deputy_at,
                          day_starts_at=starts)

        target = replace(at_school(f"school:{school['urn']}", plan.recipient_role, plan.push_at),
                         also_tell_la_at=plan.also_tell_la_at)
        if plan.dsl_return_at is not None:
            # the cover's notification is theirs to act on now; the DSL's own, with its own
            # chain, waits for the first school day back (one per school and recipient)
            target = replace(target, then=at_school(f"school:{school['urn']}:return", "dsl",
                                                    plan.dsl_return_at))
        return target
    la = school["la_code"] if school is not None else la_code
    plan = schedule_push(matched_at, calendar=SchoolCalendar(), day_starts_at=LA_DAY_STARTS_AT,
                         has_holiday_cover=False)
    target = la_target(la, plan.push_at, before=before)
    if school is None:
        return target
    return replace(target, reason=reason, via_school_urn=school["urn"],
                   via_school_name=school.get("name"))


def la_target(la_code: str | None, push_at: datetime, *,
              before: timedelta = DEFAULT_BEFORE) -> Target:
    """A notification for the LA's safeguarding contact, pushed at `push_at`, its duty
    manager called `before` its deadline (the LA's day start)."""
    deadline = la_deadline(push_at)
    return Target(f"la:{la_code or 'unknown'}", None, la_code, "safeguarding", push_at,
                  deadline_at=deadline,
                  duty_at=duty_call_at(deadline, arrived_at=push_at, before=before))


def recipients_of(target: Target) -> set[str]:
    """Every recipient a planned target tells: its own, the DSL's on return, the LA's."""
    keys = {target.recipient_key} | ({target.then.recipient_key} if target.then else set())
    if target.also_tell_la_at is not None:
        keys.add(la_target(target.la_code, target.also_tell_la_at).recipient_key)
    return keys


@transactional
async def on_child_matched(envelope: Envelope[Any], *, deps: NotifierDeps,
                           uow: UnitOfWork) -> None:
    """Add the child to one notification per (incident, school) it is on the roll of; a
    school that cannot take it sends the child to its LA, with the school and the reason."""
    event: ChildMatched = envelope.payload
    await corrections.hold_incident(uow.conn, event.incident.incident_id)
    review_id = None
    if event.decided_by == "review":
        review_id = await resolve_review(uow.conn, child_id=event.child_id,
                                         incident_id=event.incident.incident_id,
                                         la_code=event.schools[0].la_code,
                                         resolution="matched", at=event.matched_at)
    if not await _claim(uow.conn, envelope, event.incident.incident_id) or not await (
            corrections.admit(uow.conn, child_id=event.child_id, version=event.version,
                              incident_id=event.incident.incident_id)):
        return
    await stage(uow.conn, matched_outcome(event, review_id=review_id),
                topic_prefix=deps.topic_prefix)
    kept: set[str] = set()
    for match in event.schools:
        school = await _school(uow.conn, match)
        if school is None:
            # the matcher announced the school on registry.v1 before matching to it; our
            # copy is behind: wait for it rather than send the child to the wrong desk
            raise WaitingForFacts(f"school {match.urn} not yet in the notifier's registry")
        target = plan_target(event.matched_at, school=school, la_code=match.la_code,
                             calendar=await _calendar(uow.conn, match.urn),
                             before=await escalation_before(uow.conn, school["la_code"]))
        kept |= recipients_of(target)
        child = (event.child_id, event.child_index, event.child)
        await _add(uow.conn, deps, event.incident, target, *child)
        if target.then is not None:
            await _add(uow.conn, deps, event.incident, target.then, *child)
        if target.also_tell_la_at is not None:
            await _add(uow.conn, deps, event.incident,
                       la_target(target.la_code, target.also_tell_la_at,
                                 before=await escalation_before(uow.conn, target.la_code)),
                       *child, reason=HOLIDAY_REASON)
    await corrections.settle(uow.conn, deps, incident_id=event.incident.incident_id,
                             child_id=event.child_id, child_index=event.child_index,
                             version=event.version, keep=kept, child=event.child,
                             facts=event.incident)


@transactional
async def on_child_unmatched(envelope: Envelope[Any], *, deps: NotifierDeps,
                             uow: UnitOfWork) -> None:
    """Tell the LA's safeguarding contact about a child on no roll."""
    event: ChildUnmatched = envelope.payload
    await corrections.hold_incident(uow.conn, event.incident.incident_id)
    review_id = None
    if event.decided_by == "review":
        review_id = await resolve_review(uow.conn, child_id=event.child_id,
                                         incident_id=event.incident.incident_id,
                                         la_code=event.la_code, resolution=event.reason,
                                         at=event.decided_at)
    if await _claim(uow.conn, envelope, event.incident.incident_id) and await (
            corrections.admit(uow.conn, child_id=event.child_id, version=event.version,
                              incident_id=event.incident.incident_id)):
        await stage(uow.conn, unmatched_outcome(event, review_id=review_id),
                    topic_prefix=deps.topic_prefix)
        target = plan_target(event.decided_at, school=None, la_code=event.la_code,
                             before=await escalation_before(uow.conn, event.la_code))
        await _add(uow.conn, deps, event.incident, target, event.child_id, event.child_index,
                   event.child, reason=event.reason)
        await corrections.settle(uow.conn, deps, incident_id=event.incident.incident_id,
                                 child_id=event.child_id, child_index=event.child_index,
                                 version=event.version, keep=recipients_of(target),
                                 child=event.child, facts=event.incident)


@transactional
async def on_incident_withdrawn(envelope: Envelope[Any], *, deps: NotifierDeps,
                                uow: UnitOfWork) -> None:
    """Cancel notifications not yet sent; retract sent ones with a content-free notice (to
    the LA too once it was told); stop chasing the incident's reviews."""
    event: IncidentWithdrawn = envelope.payload
    now, conn = deps.clock(), uow.conn
    await corrections.hold_incident(conn, event.incident_id)
    if not await claim_event(conn, consumer=CONSUMER, event_id=envelope.event_id):
        return
    await conn.execute(insert(notifier_withdrawn_incidents).values(
        incident_id=event.incident_id, withdrawn_at=event.withdrawn_at,
    ).on_conflict_do_nothing())
    await resolve_incident_reviews(conn, incident_id=event.incident_id, at=now)
    rows = (await conn.execute(
        select(notifications).where(notifications.c.incident_id == event.incident_id)
        .with_for_update())).all()
    for row in rows:
        if row.state not in DELIVERED and row.state != "scheduled":
            continue
        state = on_withdraw(row.state)
        await conn.execute(update(notifications).where(notifications.c.id == row.id)
                           .values(state=state, closed_at=now))
        await announce_withdrawn(conn, row, at=now, topic_prefix=deps.topic_prefix)
        if state != "retracted":
            continue
        told = [row.recipient_role] + (["safeguarding"] if row.la_since is not None else [])
        for role in told:
            await queue_email(conn, kind="retraction", school_urn=row.school_urn,
                              la_code=row.la_code, recipient_role=role,
                              notification_ids=[row.id], now=now,
                              service_desk=deps.service_desk)
        await audit_sent_about(conn, topic_prefix=deps.topic_prefix, notification=row,
                               action="notification.retracted", at=now,
                               purpose="police withdrew the incident")


async def _claim(conn: AsyncConnection, envelope: Envelope[Any], incident_id: uuid.UUID) -> bool:
    await corrections.hold_incident(conn, incident_id)  # before "withdrawn?" is read
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
    la_code = notification["la_code"]
    target = la_target(la_code, deps.clock(), before=await escalation_before(conn, la_code))
    for child in children:
        await _add(conn, deps, incident, target, child["child_id"],
                   child_index_of(incident.incident_id, child["child_id"]),
                   ChildReport.model_validate(child["child"]), reason=reason)


async def tell_la(
    conn: AsyncConnection, deps: NotifierDeps, *, notification: Any,
    children: Sequence[Mapping[str, Any]], principal: Principal, channel: Channel, reason: str,
    action: str, purpose: str, topic_prefix: str,
) -> None:
    """Hand the children to the LA's safeguarding contact, each child's disclosure with it."""
    await tell_la_child_absent(
        conn, deps, notification=opened_notification(conn, notification._mapping),
        children=opened_children(conn, children), reason=reason)
    for child in children:
        await record_disclosure(
            conn, source=f"{topic_prefix}{OUTBOX_SOURCE}", topic_prefix=topic_prefix,
            principal=principal, action=action, channel=channel, purpose=purpose,
            child_key=child["child_key"], at=deps.clock(), school_urn=notification.school_urn,
            la_code=notification.la_code, notification_id=notification.id,
            incident_id=notification.incident_id)


async def _add(
    conn: AsyncConnection, deps: NotifierDeps, incident: IncidentFacts, target: Target,
    child_id: uuid.UUID, child_index: int | None, child: ChildReport, *,
    reason: str | None = None,
) -> None:
    now = deps.clock()
    plan = {"push_at": target.push_at, "deputy_at": target.deputy_at, "la_at": target.la_at,
            "deadline_at": target.deadline_at, "duty_at": target.duty_at}
    new_id = uuid.uuid4()
    await conn.execute(insert(notifications).values(
        id=new_id, incident_id=incident.incident_id, recipient_key=target.recipient_key,
        school_urn=target.school_urn, la_code=target.la_code,
        recipient_role=target.recipient_role, state="scheduled",
        incident=seal_incident(conn, new_id, incident.model_dump(mode="json"), at=now),
        created_at=now, **plan,
    ).on_conflict_do_nothing())
    row = (await conn.execute(select(
        notifications.c.id, notifications.c.state, notifications.c.push_at).where(
        notifications.c.incident_id == incident.incident_id,
        notifications.c.recipient_key == target.recipient_key).with_for_update())).one()
    key = child_key(deps.child_key_secret, given_name=child.given_name,
                    family_name=child.family_name, date_of_birth=child.date_of_birth)
    added = await conn.execute(insert(notification_children).values(
        notification_id=row.id, child_id=child_id, child_key=key,
        child=seal_child(conn, row.id, child_id, child.model_dump(mode="json"), at=now),
        unmatched_reason=reason or target.reason,
        via_school_urn=target.via_school_urn, via_school_name=target.via_school_name,
    ).on_conflict_do_nothing().returning(notification_children.c.child_id))
    if added.first() is None:
        return
    restart = row.state == "acknowledged"
    await announce_scheduled(
        conn, notification_id=row.id, incident=incident, recipient=target,
        child_index=child_index, child_key=key, at=now, topic_prefix=deps.topic_prefix,
        push_at=target.push_at if restart else now if row.state in DELIVERED else row.push_at)
    if row.state not in DELIVERED:
        return
    if restart:
        # nobody has acknowledged this child yet: the notification starts over, as new
        await conn.execute(update(notifications).where(notifications.c.id == row.id).values(
            state="scheduled", acknowledged_at=None, acknowledged_by=None, escalations_sent=0,
            la_since=None, duty_calls=0, **plan))
        return
    # a child decided later (after review) joins a notification already pushed: push again
    await queue_email(conn, kind="notice", school_urn=target.school_urn,
                      la_code=target.la_code, recipient_role=target.recipient_role,
                      notification_ids=[row.id], now=now, service_desk=deps.service_desk)


HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "ChildMatched": on_child_matched,
    "ChildUnmatched": on_child_unmatched,
    "ChildNeedsReview": corrections.on_review_needed,
    "IncidentWithdrawn": on_incident_withdrawn,
    "IncidentCorrected": corrections.on_incident_corrected,
    "ChildWithdrawn": corrections.on_child_withdrawn,
}
