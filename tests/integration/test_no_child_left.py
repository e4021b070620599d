"""No child left: random worlds driven through the morning on a test clock.

Each world is one local authority with a few schools (taking part or not, open or closed,
contacts present or missing, on holiday or not, at different start times), its children
(matched, dual-registered, sent to review, on no roll) and its people (DSLs, deputies and LA
officers who acknowledge at some moment or never, reviews resolved or left, mailboxes that
refuse every message). The notifier's real handlers, dispatcher and attendance follow-up run
against PostgreSQL while the clock steps from the evening before to the afternoon after.
Then every child must be acknowledged by a named person, or be on an open item whose next
step is still ahead and goes to somebody.

Worlds run in batches that share a morning (each world has its own LA, so they cannot see
one another); `DAYBREAK_NO_CHILD_LEFT_WORLDS` sets how many (default 200) and
`DAYBREAK_NO_CHILD_LEFT_SEED` the first seed, printed with the figures; a failure names the
world's seed, which `DAYBREAK_NO_CHILD_LEFT_SEED=<seed> DAYBREAK_NO_CHILD_LEFT_WORLDS=1`
replays alone.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import Envelope, wrap
from schemas.incidents import ChildReport
from schemas.matching import (
    ChildMatched,
    ChildNeedsReview,
    ChildUnmatched,
    IncidentFacts,
    SchoolMatch,
)
from services.common.local_time import LONDON
from services.common.security import Principal
from services.notifier import api
from services.notifier.attendance import (
    AttendanceFollowUp,
    ChildAttendance,
    attendance_of,
    record_attendance,
)
from services.notifier.context import NotifierContext
from services.notifier.dispatch import Dispatcher
from services.notifier.handlers import NotifierDeps
from services.notifier.models import (
    notification_children,
    notifications,
    review_alerts,
    school_calendar_days,
)
from services.notifier.open_items import open_items
from tests.support.clock import Clock
from tests.support.directory import (
    notifier_knows_calendar,
    notifier_knows_la,
    notifier_knows_school,
)
from tests.support.ids import next_la, next_tag, next_urn
from tests.support.notifier import handle

pytestmark = pytest.mark.integration

WORLDS = int(os.environ.get("DAYBREAK_NO_CHILD_LEFT_WORLDS", "200"))
FIRST_SEED = int(os.environ.get("DAYBREAK_NO_CHILD_LEFT_SEED", "20261201"))
PER_BATCH = 50
STEP = timedelta(minutes=10)
NIGHT_STEP = timedelta(minutes=30)  # 21:00 to 06:30 London, when nobody acts
# the mornings batches run on, before any other test's data (whose clocks are pinned later)
# so the dispatcher has little but these worlds to do: ordinary weekdays, a Monday after a
# weekend, the day after a bank holiday
MORNINGS = (date(2026, 1, 13), date(2026, 1, 19), date(2026, 1, 28), date(2026, 2, 3),
            date(2026, 2, 10), date(2026, 2, 24))
STARTS = (time(8, 30), time(8, 40), time(8, 45), time(9, 0))


def london(day: date, wall: time) -> datetime:
    """A London wall-clock moment as aware UTC."""
    return datetime.combine(day, wall, tzinfo=LONDON).astimezone(UTC)


@dataclass
class WorldSchool:
    urn: str
    participates: bool
    closed: bool
    starts: time
    contacts: list[dict[str, str]]
    holiday: bool  # the morning falls in this school's holidays
    dsl_acks_at: datetime | None
    answers_attendance_at: datetime | None


@dataclass
class WorldChild:
    child_id: uuid.UUID
    incident_id: uuid.UUID
    kind: str  # matched | dual | review | unmatched
    urns: list[str]  # the roll(s) it is on, or the review's candidates
    decided_at: datetime
    resolve_at: datetime | None = None  # a review resolved by the LA
    resolve_to: str | None = None  # a candidate's URN, or None: not on roll


@dataclass
class World:
    seed: int
    la: str
    la_contacts: list[dict[str, str]]
    before_minutes: int
    schools: list[WorldSchool]
    children: list[WorldChild]
    la_acks_at: datetime | None
    broken: set[str] = field(default_factory=set)  # mailboxes that refuse every message


def make_world(seed: int, morning: date) -> World:
    """One random world whose children are decided between the evening before and 11:00."""
    rng = random.Random(seed)
    la, tag = next_la(), next_tag()
    addresses: list[str] = []

    def contact(role: str, p: float) -> list[dict[str, str]]:
        if rng.random() >= p:
            return []
        email = f"{role}-{tag}-{len(addresses)}@world.test"
        addresses.append(email)
        return [{"role": role, "name": role.replace("_", " ").title(), "email": email}]

    la_contacts = (contact("safeguarding", 0.9) + contact("review", 0.7)
                   + contact("duty_manager", 0.8))
    evening = london(morning - timedelta(days=1), time(17, 0))

    def moment(start: datetime, end: datetime) -> datetime:
        return start + timedelta(minutes=rng.randrange(int((end - start).total_seconds() // 60)))

    def sometime() -> datetime | None:  # people act in the morning, or never
        return moment(london(morning, time(6, 30)), london(morning, time(13, 0))) \
            if rng.random() < 0.7 else None

    schools = [WorldSchool(
        urn=next_urn(), participates=rng.random() < 0.85, closed=rng.random() < 0.05,
        starts=rng.choice(STARTS),
        contacts=(contact("dsl", 0.9) + contact("deputy_dsl", 0.6)
                  + contact("holiday_cover", 0.3)),
        holiday=rng.random() < 0.1, dsl_acks_at=sometime(), answers_attendance_at=sometime())
        for _ in range(rng.randint(1, 4))]
    children = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.choices(("matched", "dual", "review", "unmatched"), (6, 1, 2, 1))[0]
        urns = [s.urn for s in rng.sample(schools, min(len(schools), 2 if kind != "matched"
                                                     and kind != "unmatched" else 1))]
        incident_id = uuid.UUID(int=rng.getrandbits(128))
        child = WorldChild(uuid.uuid5(incident_id, "child:0"), incident_id, kind,
                           urns if kind != "unmatched" else [],
                           moment(evening, london(morning, time(11, 0))))
        if kind == "review" and rng.random() < 0.6:
            child.resolve_at = child.decided_at + timedelta(minutes=rng.randrange(10, 300))
            child.resolve_to = rng.choice([*urns, None])
        if kind == "dual" and len(urns) == 1:
            child.kind = "matched"
        children.append(child)
    broken = {a for a in addresses if rng.random() < 0.1}
    return World(seed, la, la_contacts, rng.choice((15, 30, 45)), schools, children,
                 sometime(), broken)


class WorldMailer:
    """Delivers to memory; a message to any broken mailbox is refused."""

    def __init__(self) -> None:
        self.broken: set[str] = set()
        self.sent = 0

    async def send(self, *, to: list[str], subject: str, body: str, message_id: str) -> None:
        if self.broken & set(to):
            raise ConnectionRefusedError("mailbox refuses")
        self.sent += 1


class NoWebhooks:
    async def post(self, url: str, *, secret: str, body: bytes, timestamp: int,
                   delivery_id: str) -> None:
        raise AssertionError("no world school has a webhook")


def the_child(seed: int) -> ChildReport:
    return ChildReport(given_name=f"Child{seed % 997}", family_name="World",
                       date_of_birth=date(2016, 5, 17))


def the_incident(child: WorldChild) -> IncidentFacts:
    return IncidentFacts(incident_id=child.incident_id, force_code="WLD",
                         occurred_at=child.decided_at - timedelta(hours=1),
                         incident_type="domestic_abuse", disclosure_fields=[])


def decisions(world: World, child: WorldChild, morning: date) -> list[Envelope[Any]]:
    """What the matcher would put on matches.v1 / reviews.v1 for this child."""
    report, facts = the_child(world.seed), the_incident(child)
    if child.kind in ("matched", "dual"):
        return [wrap(ChildMatched(
            child_id=child.child_id, child_index=0, incident=facts, child=report,
            schools=[SchoolMatch(urn=u, la_code=world.la, score=30) for u in child.urns],
            decided_by="engine", matched_at=child.decided_at), occurred_at=child.decided_at)]
    if child.kind == "unmatched":
        return [wrap(ChildUnmatched(
            child_id=child.child_id, child_index=0, incident=facts, child=report,
            la_code=world.la, reason="not_on_roll", decided_by="engine",
            decided_at=child.decided_at), occurred_at=child.decided_at)]
    starts = min(s.starts for s in world.schools if s.urn in child.urns)
    deadline = max(london(morning, starts), child.decided_at)
    return [wrap(ChildNeedsReview(
        child_id=child.child_id, child_index=0, incident_id=child.incident_id,
        review_id=uuid.uuid5(child.child_id, "review"), la_code=world.la,
        candidates=len(child.urns), queued_at=child.decided_at, deadline_at=deadline),
        occurred_at=child.decided_at)]


def resolution(world: World, child: WorldChild) -> Envelope[Any]:
    """The matcher's event when the LA resolves the child's review."""
    assert child.resolve_at is not None
    report, facts = the_child(world.seed), the_incident(child)
    if child.resolve_to is not None:
        return wrap(ChildMatched(
            child_id=child.child_id, child_index=0, incident=facts, child=report,
            schools=[SchoolMatch(urn=child.resolve_to, la_code=world.la, score=0)],
            decided_by="review", matched_at=child.resolve_at), occurred_at=child.resolve_at)
    return wrap(ChildUnmatched(
        child_id=child.child_id, child_index=0, incident=facts, child=report,
        la_code=world.la, reason="not_on_roll", decided_by="review",
        decided_at=child.resolve_at), occurred_at=child.resolve_at)


async def register(engine: AsyncEngine, world: World, morning: date) -> None:
    """The world's LA, schools and holidays in the notifier's copy of the registry."""
    await notifier_knows_la(engine, world.la, contacts=world.la_contacts)
    for school in world.schools:
        await notifier_knows_school(
            engine, school.urn, world.la, participates=school.participates,
            status="closed" if school.closed else "open", day_starts_at=school.starts,
            contacts=school.contacts)
        if school.holiday:
            await notifier_knows_calendar(engine, school.urn, [
                (morning + timedelta(days=d), "closed") for d in range(-3, 7)])


Action = tuple[datetime, int, str, Any]


def actions_of(worlds: list[World], morning: date) -> list[Action]:
    """Everything that happens in the batch, in time order."""
    out: list[Action] = []
    for n, world in enumerate(worlds):
        for child in world.children:
            for envelope in decisions(world, child, morning):
                out.append((child.decided_at, n, "event", envelope))
            if child.resolve_at is not None:
                out.append((child.resolve_at, n, "event", resolution(world, child)))
        for school in world.schools:
            if school.dsl_acks_at is not None:
                out.append((school.dsl_acks_at, n, "dsl_acks", school))
            if school.answers_attendance_at is not None:
                out.append((school.answers_attendance_at, n, "attendance", school))
        if world.la_acks_at is not None:
            out.append((world.la_acks_at, n, "la_acks", world))
    return sorted(out, key=lambda a: (a[0], a[1]))


def steps(start: datetime, end: datetime) -> Iterator[datetime]:
    """The clock's ticks: every ten minutes, every half hour at night."""
    at = start
    while at <= end:
        yield at
        wall = at.astimezone(LONDON).time()
        at += NIGHT_STEP if wall >= time(21, 0) or wall < time(6, 30) else STEP


@dataclass
class Morning:
    ctx: NotifierContext
    dispatcher: Dispatcher
    attendance: AttendanceFollowUp
    clock: Clock

    async def run(self) -> None:
        await self.dispatcher.run_once()
        await self.attendance.run_once()
        await self.dispatcher.run_once()  # the prompts and hand-ons the follow-up staged


async def act(morning: Morning, world: World, kind: str, subject: Any) -> None:
    """A person does what the world says they do at this moment."""
    ctx = morning.ctx
    if kind == "event":
        await handle(subject, deps=ctx.deps)
        return
    if kind == "la_acks":
        who = Principal(subject=f"user:la-{world.la}", kind="user", role="la_officer",
                        scopes=frozenset({"notifications:read", "notifications:ack"}),
                        la_codes=frozenset({world.la}))
    else:
        who = Principal(subject=f"user:dsl-{subject.urn}", kind="user", role="dsl",
                        scopes=frozenset({"notifications:read", "notifications:ack"}),
                        school_urns=frozenset({subject.urn}))
    listed = (await api.list_notifications(who, ctx))["items"]
    rng = random.Random(f"{world.seed}:{kind}")
    for item in listed:
        if kind == "attendance" and item["state"] not in ("cancelled", "retracted"):
            children = await attendance_of(ctx, uuid.UUID(item["id"]))
            await record_attendance(ctx, uuid.UUID(item["id"]), who, channel="api", answers=[
                ChildAttendance(child_id=c.child_id, attended=rng.random() < 0.9)
                for c in children])
        elif kind != "attendance" and item["state"] in ("scheduled", "sent", "viewed",
                                                          "escalated"):
            await api.view_notification(ctx, uuid.UUID(item["id"]), who, channel="api")
            await api.acknowledge_notification(
                ctx, uuid.UUID(item["id"]),
                api.AcknowledgeIn(action_taken="pastoral support"), who, channel="api")


async def verdict(engine: AsyncEngine, world: World, now: datetime) -> list[str]:
    """Every way the world leaves a child with nobody; empty when none is left."""
    async with engine.connect() as conn:
        items = await open_items(conn, now=now, la_codes=[world.la])
        acked = {row.child_id for row in (await conn.execute(
            select(notification_children.c.child_id)
            .join(notifications, notifications.c.id == notification_children.c.notification_id)
            .where(notifications.c.la_code == world.la,
                   notifications.c.acknowledged_by.is_not(None)))).all()}
    failures = [f"world {world.seed}: open {item.kind} {item.id} has no next step ahead "
                f"(next at {item.next_at}, to {item.next_addresses})"
                for item in items if not (item.next_at > now and item.next_addresses)]
    on_items = {c for item in items for c in item.child_ids}
    failures += [f"world {world.seed}: child {c.child_id} ({c.kind}) is neither acknowledged "
                 f"nor on an open item" for c in world.children
                 if c.child_id not in acked and c.child_id not in on_items]
    return failures


async def forget(engine: AsyncEngine, worlds: list[World]) -> None:
    """Close the batch's leftovers so the next batch's dispatcher is not busy with them."""
    las = [w.la for w in worlds]
    urns = [s.urn for w in worlds for s in w.schools]
    async with engine.begin() as conn:
        await conn.execute(delete(notifications).where(notifications.c.la_code.in_(las)))
        await conn.execute(delete(review_alerts).where(review_alerts.c.la_code.in_(las)))
        await conn.execute(delete(school_calendar_days).where(
            school_calendar_days.c.urn.in_(urns)))


@pytest.fixture
async def morning(settings, notifier_engine) -> AsyncIterator[Morning]:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    deps = NotifierDeps(engine=notifier_engine, clock=clock,
                        child_key_secret=settings.child_key_secret.get_secret_value())
    ctx = NotifierContext(settings=settings, engine=notifier_engine, clock=clock, deps=deps,
                          registry=CollectorRegistry())
    mailer = WorldMailer()
    dispatcher = Dispatcher(engine=notifier_engine, mailer=mailer, webhooks=NoWebhooks(),
                            clock=clock, portal_base_url="https://portal.test",
                            max_attempts=2, backoff_s=60, batch_size=1000)
    yield Morning(ctx, dispatcher, AttendanceFollowUp(engine=notifier_engine, deps=deps,
                                                      clock=clock), clock)


async def test_every_child_ends_with_a_named_person_or_an_open_item_with_a_next_person(
    morning: Morning, notifier_engine: AsyncEngine, capsys: pytest.CaptureFixture[str],
) -> None:
    checked_worlds = checked_children = acknowledged = 0
    failures: list[str] = []
    for batch, first in enumerate(range(0, WORLDS, PER_BATCH)):
        day = MORNINGS[batch % len(MORNINGS)] + timedelta(weeks=7 * (batch // len(MORNINGS)))
        worlds = [make_world(FIRST_SEED + n, day)
                  for n in range(first, min(first + PER_BATCH, WORLDS))]
        mailer = morning.dispatcher.mailer
        assert isinstance(mailer, WorldMailer)
        mailer.broken = set().union(*(w.broken for w in worlds))
        for world in worlds:
            await register(notifier_engine, world, day)
        pending = actions_of(worlds, day)
        end = london(day, time(14, 0))
        for now in steps(london(day - timedelta(days=1), time(17, 0)), end):
            morning.clock.now = now
            while pending and pending[0][0] <= now:
                _, n, kind, subject = pending.pop(0)
                await act(morning, worlds[n], kind, subject)
            await morning.run()
        for world in worlds:
            failures += await verdict(notifier_engine, world, end)
        async with notifier_engine.connect() as conn:
            acknowledged += len(set((await conn.execute(
                select(notification_children.c.child_id)
                .join(notifications,
                      notifications.c.id == notification_children.c.notification_id)
                .where(notifications.c.la_code.in_([w.la for w in worlds]),
                       notifications.c.acknowledged_by.is_not(None)))).scalars()))
        checked_worlds += len(worlds)
        checked_children += sum(len(w.children) for w in worlds)
        await forget(notifier_engine, worlds)
    with capsys.disabled():
        print(f"\nno child left: {checked_worlds} worlds, {checked_children} children checked "
              f"(seeds {FIRST_SEED}..{FIRST_SEED + WORLDS - 1}); {acknowledged} acknowledged "
              f"by a named person, the rest on an open item with a next person; "
              f"{morning.dispatcher.mailer.sent} e-mails")  # type: ignore[attr-defined]
    assert not failures, "\n".join(failures[:20])
