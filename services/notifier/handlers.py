"""The notifier's consumer: matches become notifications (a poll's decisions at once, in a
constant number of statements), reviews are chased, withdrawals cancel or retract them."""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import Uuid, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.disclosures import Channel
from schemas.envelope import Envelope
from schemas.incidents import ChildReport, IncidentWithdrawn
from schemas.matching import ChildMatched, ChildUnmatched, IncidentFacts
from schemas.notifications import LifecycleEvent, NotificationScheduled
from services.common.db import UnitOfWork, any_of
from services.common.disclosure import record_disclosures
from services.common.errors import WaitingForFacts
from services.common.escalation import (
    DEPUTY_AFTER_MINUTES,
    ESCALATION_BEFORE_MINUTES,
    LA_AFTER_MINUTES,
    LA_DAY_STARTS_AT,
)
from services.common.events import per_poll, transactional
from services.common.idempotency import claim_event, claim_events
from services.common.pseudonym import Secrets, child_key
from services.common.security import Principal
from services.notifier import corrections
from services.notifier.announce import (
    REPEAT_WINDOW,
    announce_withdrawn,
    child_index_of,
    matched_outcome,
    scheduled_event,
    telling_key,
    told_before,
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
from services.notifier.lifecycle import stage, stage_all
from services.notifier.models import (
    child_versions,
    local_authorities,
    notifications,
    notifier_withdrawn_incidents,
    school_calendar_days,
    schools,
)
from services.notifier.outgoing import (
    OUTBOX_SOURCE,
    Desk,
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


Decision = ChildMatched | ChildUnmatched


@dataclass(frozen=True)
class Addition:
    """One child to put on its incident's notification for a planned recipient."""

    incident: IncidentFacts
    target: Target
    child_id: uuid.UUID
    child_index: int | None
    child: ChildReport
    reason: str | None = None
    decision: int = 0  # which decision of the run it comes from (its events follow that one's)


@dataclass(frozen=True)
class Registry:
    """The schools, calendars and LAs a run of decisions is planned with."""

    schools: Mapping[str, Mapping[str, Any]]
    calendars: Mapping[str, SchoolCalendar]
    las: Mapping[str, Any]

    def before(self, la_code: str | None) -> timedelta:
        """How long before a deadline the LA's duty manager is called (`escalation_before`)."""
        return Desk(None, self.las.get(la_code) if la_code else None, la_code).before


@per_poll
async def on_decisions(envelopes: list[Envelope[Any]], *, deps: NotifierDeps,
                       uow: UnitOfWork) -> None:
    """ChildMatched and ChildUnmatched, a run at a time in a constant number of statements;
    a decision made by review, or about a corrected child, is applied alone in its place."""
    for alone, group in groupby(envelopes, key=lambda e: _alone(e.payload)):
        if not alone:
            await _decide_all(uow.conn, deps, list(group))
            continue
        for envelope in group:
            await _decide_one(uow.conn, deps, envelope)


@transactional
async def on_decision(envelope: Envelope[Any], *, deps: NotifierDeps, uow: UnitOfWork) -> None:
    """Add the child to one notification per (incident, school) it is on the roll of (a
    school that cannot take it sends the child to its LA, with the school and the reason),
    or to its LA's when it is on no roll: `on_decisions` for one event."""
    await on_decisions([envelope], deps=deps, uow=uow)


on_child_matched = on_child_unmatched = on_decision


def _alone(decision: Decision) -> bool:
    return decision.decided_by == "review" or decision.version > 1


async def _decide_all(conn: AsyncConnection, deps: NotifierDeps,
                      envelopes: Sequence[Envelope[Any]]) -> None:
    """First decisions made by the engine: each step (incident locks, claims, withdrawn
    incidents and children, registry, notifications, children, repeats, events) one
    statement for the whole run."""
    await corrections.hold_incidents(conn, (e.payload.incident.incident_id for e in envelopes))
    claimed = await claim_events(conn, consumer=CONSUMER,
                                 event_ids=[e.event_id for e in envelopes])
    fresh: list[Decision] = []
    for envelope in envelopes:
        if envelope.event_id in claimed:
            claimed.discard(envelope.event_id)  # a copy redelivered in the same poll: once
            fresh.append(envelope.payload)
    decisions = await _admitted(conn, fresh)
    registry = await _registry(conn, decisions)
    adds = [a for no, d in enumerate(decisions) for a in _additions(d, registry, no=no)[0]]
    joined: dict[int, list[LifecycleEvent]] = defaultdict(list)
    for no, event in await _add_all(conn, deps, adds):
        joined[no].append(event)
    # each decision's outcome, then the notifications its child joined: as one by one
    await stage_all(conn, (e for no, d in enumerate(decisions)
                           for e in [_outcome(d, review_id=None), *joined[no]]),
                    topic_prefix=deps.topic_prefix)


async def _decide_one(conn: AsyncConnection, deps: NotifierDeps,
                      envelope: Envelope[Any]) -> None:
    """A decision made by review (its alert resolved) or about a corrected child (its version
    kept, its other notifications settled)."""
    decision: Decision = envelope.payload
    incident_id = decision.incident.incident_id
    await corrections.hold_incident(conn, incident_id)
    review_id = None
    if decision.decided_by == "review":
        review_id = await resolve_review(
            conn, child_id=decision.child_id, incident_id=incident_id,
            la_code=_la_of(decision), resolution=_resolution(decision),
            at=_decided_at(decision))
    if not await _claim(conn, envelope, incident_id) or not await corrections.admit(
            conn, child_id=decision.child_id, version=decision.version,
            incident_id=incident_id):
        return
    await stage(conn, _outcome(decision, review_id=review_id), topic_prefix=deps.topic_prefix)
    adds, kept = _additions(decision, await _registry(conn, [decision]), no=0)
    await _add(conn, deps, adds)
    await corrections.settle(conn, deps, incident_id=incident_id, child_id=decision.child_id,
                             child_index=decision.child_index, version=decision.version,
                             keep=kept, child=decision.child, facts=decision.incident)


def _la_of(decision: Decision) -> str | None:
    return decision.schools[0].la_code if isinstance(decision, ChildMatched) else decision.la_code


def _resolution(decision: Decision) -> str:
    return "matched" if isinstance(decision, ChildMatched) else decision.reason


def _decided_at(decision: Decision) -> datetime:
    return decision.matched_at if isinstance(decision, ChildMatched) else decision.decided_at


def _outcome(decision: Decision, *, review_id: uuid.UUID | None) -> LifecycleEvent:
    if isinstance(decision, ChildMatched):
        return matched_outcome(decision, review_id=review_id)
    return unmatched_outcome(decision, review_id=review_id)


async def _admitted(conn: AsyncConnection, decisions: Sequence[Decision]) -> list[Decision]:
    """The first decisions whose incident and child were not withdrawn and whose child was
    not decided in a newer version (`corrections.admit` for version 1, rows locked alike)."""
    if not decisions:
        return []
    w, v = notifier_withdrawn_incidents.c, child_versions.c
    gone = set((await conn.execute(select(w.incident_id).where(
        w.incident_id == any_of(sorted({d.incident.incident_id for d in decisions}),
                                of=Uuid)))).scalars())
    kept = [d for d in decisions if d.incident.incident_id not in gone]
    if not kept:
        return []
    known = {row.child_id: row for row in await conn.execute(
        select(v.child_id, v.version, v.withdrawn_at)
        .where(v.child_id == any_of(sorted({d.child_id for d in kept}), of=Uuid))
        .with_for_update())}
    return [d for d in kept if d.child_id not in known or (
        known[d.child_id].withdrawn_at is None and known[d.child_id].version <= d.version)]


async def _registry(conn: AsyncConnection, decisions: Sequence[Decision]) -> Registry:
    """The schools the decisions name, their calendars and every LA involved."""
    urns = sorted({m.urn for d in decisions if isinstance(d, ChildMatched) for m in d.schools})
    found: dict[str, Mapping[str, Any]] = {}
    overrides: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    if urns:
        found = {row.urn: dict(row._mapping) for row in await conn.execute(
            select(schools).where(schools.c.urn == any_of(urns)))}
        days = school_calendar_days.c
        for row in await conn.execute(select(days.urn, days.day, days.kind)
                                      .where(days.urn == any_of(urns))):
            overrides[row.urn].append((row.day, row.kind))
    codes = sorted({s["la_code"] for s in found.values()} | {
        d.la_code for d in decisions if isinstance(d, ChildUnmatched) and d.la_code})
    las = {row.la_code: row for row in await conn.execute(select(local_authorities).where(
        local_authorities.c.la_code == any_of(codes)))} if codes else {}
    return Registry(found, {u: SchoolCalendar.from_overrides(overrides[u]) for u in urns}, las)


def _additions(decision: Decision, registry: Registry, *, no: int
               ) -> tuple[list[Addition], set[str]]:
    """Where a decision puts its child, and every recipient it now tells (`settle` keeps
    those)."""
    def on(target: Target, reason: str | None = None) -> Addition:
        return Addition(decision.incident, target, decision.child_id, decision.child_index,
                        decision.child, reason=reason, decision=no)

    if isinstance(decision, ChildUnmatched):
        target = plan_target(decision.decided_at, school=None, la_code=decision.la_code,
                             before=registry.before(decision.la_code))
        return [on(target, decision.reason)], recipients_of(target)
    adds, kept = [], set()
    for match in decision.schools:
        school = registry.schools.get(match.urn)
        if school is None:
            # the matcher announced the school on registry.v1 before matching to it; our
            # copy is behind: wait for it rather than send the child to the wrong desk
            raise WaitingForFacts(f"school {match.urn} not yet in the notifier's registry")
        target = plan_target(decision.matched_at, school=school, la_code=match.la_code,
                             calendar=registry.calendars.get(match.urn),
                             before=registry.before(school["la_code"]))
        kept |= recipients_of(target)
        adds.append(on(target))
        if target.then is not None:
            adds.append(on(target.then))
        if target.also_tell_la_at is not None:
            adds.append(on(la_target(target.la_code, target.also_tell_la_at,
                                     before=registry.before(target.la_code)), HOLIDAY_REASON))
    return adds, kept


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


async def tell_la_child_absent(
    conn: AsyncConnection, deps: NotifierDeps, *, notification: Mapping[str, Any],
    children: Sequence[Mapping[str, Any]], reason: str = ABSENT_REASON,
) -> None:
    """The school reports the child(ren) absent the morning after (or nobody said whether they
    came, `reason`): the LA hears at once."""
    incident = IncidentFacts.model_validate(notification["incident"])
    la_code = notification["la_code"]
    target = la_target(la_code, deps.clock(), before=await escalation_before(conn, la_code))
    await _add(conn, deps, [
        Addition(incident, target, child["child_id"],
                 child_index_of(incident.incident_id, child["child_id"]),
                 ChildReport.model_validate(child["child"]), reason=reason)
        for child in children])


async def tell_la(
    conn: AsyncConnection, deps: NotifierDeps, *, notification: Any,
    children: Sequence[Mapping[str, Any]], principal: Principal, channel: Channel, reason: str,
    action: str, purpose: str, topic_prefix: str,
) -> None:
    """Hand the children to the LA's safeguarding contact, each child's disclosure with it."""
    await tell_la_child_absent(
        conn, deps, notification=opened_notification(conn, notification._mapping),
        children=opened_children(conn, children), reason=reason)
    await record_disclosures(
        conn, source=f"{topic_prefix}{OUTBOX_SOURCE}", topic_prefix=topic_prefix,
        principal=principal, action=action, channel=channel, purpose=purpose,
        child_keys=[child["child_key"] for child in children], at=deps.clock(),
        school_urn=notification.school_urn, la_code=notification.la_code,
        notification_id=notification.id, incident_id=notification.incident_id)


@dataclass
class Slot:
    """A notification children are added to, as the run has left it so far."""

    id: uuid.UUID
    state: str
    push_at: datetime
    created_at: datetime


def _slot_of(add: Addition) -> tuple[uuid.UUID, str]:
    return add.incident.incident_id, add.target.recipient_key


def _plan(target: Target) -> dict[str, datetime | None]:
    return {"push_at": target.push_at, "deputy_at": target.deputy_at, "la_at": target.la_at,
            "deadline_at": target.deadline_at, "duty_at": target.duty_at}


async def _add(conn: AsyncConnection, deps: NotifierDeps, adds: Sequence[Addition]) -> None:
    """`_add_all`, its events staged."""
    await stage_all(conn, [event for _, event in await _add_all(conn, deps, adds)],
                    topic_prefix=deps.topic_prefix)


async def _add_all(conn: AsyncConnection, deps: NotifierDeps, adds: Sequence[Addition]
                   ) -> list[tuple[int, NotificationScheduled]]:
    """Put each child on its incident's notification for its recipient (one per incident and
    recipient, however many children join it), one statement per step for all; the
    NotificationScheduled of each child that joined (with its `decision`), in order. A child
    joining a notification already pushed is pushed again; one acknowledged starts over."""
    if not adds:
        return []
    now = deps.clock()
    slots = await _notifications_for(conn, adds, now=now)
    joins: dict[tuple[uuid.UUID, uuid.UUID], tuple[Addition, str]] = {}
    for add in adds:
        key = child_key(deps.child_key_secret, given_name=add.child.given_name,
                        family_name=add.child.family_name,
                        date_of_birth=add.child.date_of_birth)
        joins.setdefault((slots[_slot_of(add)].id, add.child_id), (add, key))
    told = await told_before(conn, child_keys=[key for _, key in joins.values()], at=now)
    added = await _insert_children(conn, joins, now=now)
    out: list[tuple[int, NotificationScheduled]] = []
    for pair, (add, key) in joins.items():
        if pair not in added:
            continue
        slot, target = slots[_slot_of(add)], add.target
        # as if one by one: a child joined earlier in this run is one this recipient was told
        # of before, when its notification is older than now
        seen = told.setdefault(
            telling_key(key, school_urn=target.school_urn, la_code=target.la_code), set())
        repeats = int(bool(seen - {add.incident.incident_id}))
        if now - REPEAT_WINDOW <= slot.created_at < now:
            seen.add(add.incident.incident_id)
        restart = slot.state == "acknowledged"
        push_at = target.push_at if restart else now if slot.state in DELIVERED else slot.push_at
        if add.child_index is not None:
            out.append((add.decision, scheduled_event(
                notification_id=slot.id, incident=add.incident, recipient=target,
                child_index=add.child_index, push_at=push_at, at=now, repeats=repeats)))
        if restart:
            # nobody has acknowledged this child yet: the notification starts over, as new
            await conn.execute(update(notifications).where(notifications.c.id == slot.id)
                               .values(state="scheduled", acknowledged_at=None,
                                       acknowledged_by=None, escalations_sent=0,
                                       la_since=None, duty_calls=0, **_plan(target)))
            slot.state, slot.push_at = "scheduled", target.push_at
        elif slot.state in DELIVERED:
            # a child decided later (after review) joins a notification already pushed
            await queue_email(conn, kind="notice", school_urn=target.school_urn,
                              la_code=target.la_code, recipient_role=target.recipient_role,
                              notification_ids=[slot.id], now=now,
                              service_desk=deps.service_desk)
    return out


# fixed statements over arrays (compiled once, whatever the run's size), the rows in the
# order of their keys
_NEW_NOTIFICATIONS = text("""
INSERT INTO notifier.notifications (id, incident_id, recipient_key, school_urn, la_code,
  recipient_role, state, incident, push_at, deputy_at, la_at, deadline_at, duty_at, created_at)
SELECT r.id, r.incident_id, r.recipient_key, r.school_urn, r.la_code, r.recipient_role,
  'scheduled', CAST(r.incident AS jsonb), r.push_at, r.deputy_at, r.la_at, r.deadline_at,
  r.duty_at, :now
FROM unnest(CAST(:ids AS uuid[]), CAST(:incidents AS uuid[]), CAST(:keys AS text[]),
  CAST(:urns AS text[]), CAST(:las AS text[]), CAST(:roles AS text[]),
  CAST(:documents AS text[]), CAST(:push AS timestamptz[]), CAST(:deputy AS timestamptz[]),
  CAST(:la AS timestamptz[]), CAST(:deadline AS timestamptz[]), CAST(:duty AS timestamptz[]))
  AS r(id, incident_id, recipient_key, school_urn, la_code, recipient_role, incident, push_at,
       deputy_at, la_at, deadline_at, duty_at)
ORDER BY r.incident_id, r.recipient_key
ON CONFLICT DO NOTHING""")
_LOCK_NOTIFICATIONS = text("""
SELECT n.id, n.incident_id, n.recipient_key, n.state, n.push_at, n.created_at
FROM notifier.notifications n
JOIN unnest(CAST(:incidents AS uuid[]), CAST(:keys AS text[])) AS r(incident_id, recipient_key)
  ON n.incident_id = r.incident_id AND n.recipient_key = r.recipient_key
ORDER BY n.incident_id, n.recipient_key
FOR UPDATE OF n""")
_NEW_CHILDREN = text("""
INSERT INTO notifier.notification_children (notification_id, child_id, child_key, child,
  unmatched_reason, via_school_urn, via_school_name)
SELECT r.notification_id, r.child_id, r.child_key, CAST(r.child AS jsonb), r.unmatched_reason,
  r.via_school_urn, r.via_school_name
FROM unnest(CAST(:notifications AS uuid[]), CAST(:children AS uuid[]), CAST(:keys AS text[]),
  CAST(:documents AS text[]), CAST(:reasons AS text[]), CAST(:urns AS text[]),
  CAST(:names AS text[]))
  AS r(notification_id, child_id, child_key, child, unmatched_reason, via_school_urn,
       via_school_name)
ORDER BY r.notification_id, r.child_id
ON CONFLICT DO NOTHING
RETURNING notification_id, child_id""")


async def _notifications_for(conn: AsyncConnection, adds: Sequence[Addition], *,
                             now: datetime) -> dict[tuple[uuid.UUID, str], Slot]:
    """Each addition's notification, created when new (with the first addition's plan),
    locked."""
    firsts: dict[tuple[uuid.UUID, str], Addition] = {}
    for add in adds:
        firsts.setdefault(_slot_of(add), add)
    ids = [uuid.uuid4() for _ in firsts]
    targets = [add.target for add in firsts.values()]
    incidents, keys = [i for i, _ in firsts], [k for _, k in firsts]
    await conn.execute(_NEW_NOTIFICATIONS, {
        "ids": ids, "incidents": incidents, "keys": keys, "now": now,
        "urns": [t.school_urn for t in targets], "las": [t.la_code for t in targets],
        "roles": [t.recipient_role for t in targets],
        "documents": [json.dumps(seal_incident(conn, new_id, add.incident.model_dump(
            mode="json"), at=now)) for new_id, add in zip(ids, firsts.values(), strict=True)],
        "push": [t.push_at for t in targets], "deputy": [t.deputy_at for t in targets],
        "la": [t.la_at for t in targets], "deadline": [t.deadline_at for t in targets],
        "duty": [t.duty_at for t in targets]})
    found = await conn.execute(_LOCK_NOTIFICATIONS, {"incidents": incidents, "keys": keys})
    return {(row.incident_id, row.recipient_key): Slot(row.id, row.state, row.push_at,
                                                       row.created_at) for row in found}


async def _insert_children(conn: AsyncConnection,
                           joins: Mapping[tuple[uuid.UUID, uuid.UUID], tuple[Addition, str]],
                           *, now: datetime) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """The children not yet on their notifications, added (child data sealed)."""
    adds = [add for add, _ in joins.values()]
    added = await conn.execute(_NEW_CHILDREN, {
        "notifications": [n for n, _ in joins], "children": [c for _, c in joins],
        "keys": [key for _, key in joins.values()],
        "documents": [json.dumps(seal_child(conn, n, c, add.child.model_dump(mode="json"),
                                            at=now)) for (n, c), add in zip(joins, adds,
                                                                            strict=True)],
        "reasons": [add.reason or add.target.reason for add in adds],
        "urns": [add.target.via_school_urn for add in adds],
        "names": [add.target.via_school_name for add in adds]})
    return {(row.notification_id, row.child_id) for row in added}


HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "ChildMatched": on_decisions,
    "ChildUnmatched": on_decisions,
    "ChildNeedsReview": corrections.on_review_needed,
    "IncidentWithdrawn": on_incident_withdrawn,
    "IncidentCorrected": corrections.on_incident_corrected,
    "ChildWithdrawn": corrections.on_child_withdrawn,
}
