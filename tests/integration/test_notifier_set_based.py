"""The notifier's decisions a poll at a time: the same rows and events as one by one, in a
constant number of statements however many events the poll holds."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import Envelope, wrap
from schemas.incidents import IncidentWithdrawn
from schemas.matching import ChildMatched, ChildUnmatched, SchoolMatch, child_id_for
from services.common.db import UnitOfWork
from services.common.events import apply_values
from services.common.models import outbox
from services.common.sealing import sealing_of
from services.notifier.handlers import HANDLERS, NotifierDeps, on_incident_withdrawn
from services.notifier.models import emails, notification_children, notifications
from services.notifier.outgoing import OUTBOX_SOURCE
from tests.support.clock import Clock
from tests.support.db import executemanys, statements
from tests.support.notifier import MATCHED_AT, School, add_school, child, facts

pytestmark = pytest.mark.integration


@pytest.fixture
def clock() -> Clock:
    """Sunday evening, when the children are matched."""
    return Clock(MATCHED_AT)


@pytest.fixture
def deps(notifier_engine, clock, settings) -> NotifierDeps:
    """The handlers staging under this test's topics."""
    return NotifierDeps(engine=notifier_engine, clock=clock, topic_prefix=settings.topic_prefix,
                        child_key_secret=settings.child_key_secret.get_secret_value())


def decided(incident_id: uuid.UUID, schools: Sequence[School], given: str, index: int, *,
            decided_by: str = "engine") -> Envelope[Any]:
    """The matcher's ChildMatched for child `index` of the incident, on these schools' rolls."""
    return wrap(ChildMatched(
        child_id=child_id_for(incident_id, index), child_index=index,
        incident=facts(incident_id), child=child(given), decided_by=decided_by,
        schools=[SchoolMatch(urn=s.urn, la_code=s.la, score=30) for s in schools],
        matched_at=MATCHED_AT))


def unmatched(incident_id: uuid.UUID, la_code: str, given: str, index: int) -> Envelope[Any]:
    """The matcher's ChildUnmatched: the child is on no roll of the LA."""
    return wrap(ChildUnmatched(
        child_id=child_id_for(incident_id, index), child_index=index,
        incident=facts(incident_id), child=child(given), la_code=la_code,
        reason="not_on_roll", decided_by="engine", decided_at=MATCHED_AT))


async def apply_poll(deps: NotifierDeps, envelopes: Sequence[Envelope[Any]]) -> None:
    """The consumer's poll: every event in one transaction, through the handler table."""
    sealing = sealing_of(deps.engine)
    async with UnitOfWork(deps.engine) as uow:
        await apply_values([sealing.envelope_bytes(e) for e in envelopes], HANDLERS,
                           deps=deps, uow=uow)
        await uow.commit()


@dataclass
class World:
    """Schools and incidents of one run, and the names that make two runs comparable."""

    open: School
    closed: School  # not participating: its children go to its LA
    incidents: list[uuid.UUID]
    names: dict[str, str] = field(default_factory=dict)

    def poll(self) -> list[Envelope[Any]]:
        """A poll: two children of one incident at one school (and a copy redelivered), a child
        on two rolls, one on none, one decided by review in the middle, a withdrawn incident,
        children joining notifications acknowledged and pushed, a child told before."""
        prior, again, pushed, gone, both, lone, review = self.incidents
        first = decided(again, [self.open], "Zara", 0)
        return [first, decided(again, [self.open], "Tomi", 1), first,
                decided(both, [self.open, self.closed], "Ola", 0),
                decided(review, [self.open], "Ade", 0, decided_by="review"),
                unmatched(lone, self.open.la, "Bisi", 0), decided(gone, [self.open], "Kemi", 0),
                decided(prior, [self.open], "Femi", 1), decided(pushed, [self.open], "Dayo", 1),
                decided(again, [self.open], "Lola", 2)]


async def new_world(deps: NotifierDeps, clock: Clock) -> World:
    """Fresh schools; yesterday's notifications (one acknowledged, one pushed) and a withdrawn
    incident, applied one by one."""
    engine = deps.engine
    world = World(await add_school(engine), await add_school(engine, participates=False),
                  [uuid.uuid4() for _ in range(7)])
    prior, _, pushed, gone, *_ = world.incidents
    clock.now = MATCHED_AT - timedelta(days=1)
    await apply_poll(deps, [decided(prior, [world.open], "Zara", 0)])
    await apply_poll(deps, [decided(pushed, [world.open], "Mide", 0)])
    async with engine.begin() as conn:
        for incident_id, state in ((prior, "acknowledged"), (pushed, "sent")):
            await conn.execute(update(notifications).where(
                notifications.c.incident_id == incident_id).values(state=state))
    await on_incident_withdrawn(wrap(IncidentWithdrawn(
        incident_id=gone, force_code="WMP", withdrawn_at=clock.now, reason="error")), deps=deps)
    clock.now = MATCHED_AT
    for school, tag in ((world.open, "open"), (world.closed, "closed")):
        world.names |= {school.urn: f"school-{tag}", school.la: f"la-{tag}"}
    for i, incident_id in enumerate(world.incidents):
        world.names[str(incident_id)] = f"incident-{i}"
        world.names |= {str(child_id_for(incident_id, c)): f"child-{i}.{c}" for c in range(3)}
    return world


def named(value: Any, names: dict[str, str]) -> Any:
    """`value` with the world's ids (alone, or as parts of a key such as `school:<urn>`)
    replaced by their names."""
    if isinstance(value, dict):
        return {k: named(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [named(v, names) for v in value]
    if isinstance(value, uuid.UUID | str):
        return ":".join(names.get(part, part) for part in str(value).split(":"))
    return value


async def seen(engine: AsyncEngine, settings: Any, world: World) -> dict[str, Any]:
    """Everything the notifier wrote about the world: notifications, children, staged lifecycle
    events and e-mails, with its ids named."""
    n, c, o, e = notifications.c, notification_children.c, outbox.c, emails.c
    ids = [str(i) for i in world.incidents]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(notifications).where(
            n.incident_id.in_(world.incidents)))).all()
        names = world.names | {
            str(r.id): named(f"notification:{r.incident_id}:{r.recipient_key}", world.names)
            for r in rows}
        kids = (await conn.execute(
            select(c.notification_id, c.child_id, c.child_key, c.unmatched_reason,
                   c.via_school_urn, c.version)
            .where(c.notification_id.in_([r.id for r in rows])))).all()
        staged = (await conn.execute(select(o.key, o.value).where(
            o.source == settings.topic(OUTBOX_SOURCE), o.key.in_(ids)).order_by(o.id))).all()
        mail = (await conn.execute(select(e.kind, e.school_urn, e.notification_ids).where(
            or_(e.school_urn.in_([world.open.urn, world.closed.urn]),
                e.la_code.in_([world.open.la, world.closed.la]))).order_by(e.created_at))).all()
    sealing = sealing_of(engine)
    events = [sealing.opened_json(v) for _, v in staged]
    out = named({
        "notifications": [{k: v for k, v in r._mapping.items() if k not in ("id", "incident")}
                          for r in rows],
        "children": [[k.notification_id, k.child_id, k.child_key, k.unmatched_reason,
                      k.via_school_urn, k.version] for k in kids],
        "events": [[key, ev["type"], ev["payload"]] for (key, _), ev in zip(staged, events,
                                                                             strict=True)],
        "emails": [[m.kind, m.school_urn, m.notification_ids] for m in mail],
    }, names)
    return out | {part: sorted(out[part], key=lambda v: json.dumps(v, default=str))
                  for part in ("notifications", "children", "emails")}


async def test_a_poll_writes_the_same_rows_and_events_as_one_by_one(
    notifier_engine, deps, clock, settings
) -> None:
    alone, together = await new_world(deps, clock), await new_world(deps, clock)
    for envelope in alone.poll():
        await apply_poll(deps, [envelope])  # the consumer's one-by-one fallback
    await apply_poll(deps, together.poll())
    one_by_one = await seen(notifier_engine, settings, alone)
    assert await seen(notifier_engine, settings, together) == one_by_one
    kinds = [(t, p.get("child_indexes"), p.get("repeat_children"), p.get("outcome"))
             for _, t, p in one_by_one["events"] if p["incident_id"] == "incident-1"]
    assert kinds == [  # Zara's second incident at her school; her copy comes once
        ("ChildOutcome", None, None, "matched"), ("NotificationScheduled", [0], 1, None),
        ("ChildOutcome", None, None, "matched"), ("NotificationScheduled", [1], 0, None),
        ("ChildOutcome", None, None, "matched"), ("NotificationScheduled", [2], 0, None)]
    assert not [p for _, _, p in one_by_one["events"] if p["incident_id"] == "incident-3"]
    states = {(r["incident_id"], r["recipient_key"]): r["state"]
              for r in one_by_one["notifications"]}
    assert states[("incident-0", "school:school-open")] == "scheduled"  # started over
    assert states[("incident-2", "school:school-open")] == "sent"
    assert ["notice", "school-open"] in [m[:2] for m in one_by_one["emails"]]
    assert ("incident-4", "la:la-closed") in states  # through the school that cannot take it




async def test_a_poll_of_fifty_takes_as_many_statements_as_a_poll_of_one(
    notifier_engine, deps
) -> None:
    schools = [await add_school(notifier_engine) for _ in range(5)]
    la = schools[0].la

    def poll(size: int) -> list[Envelope[Any]]:
        incidents = [uuid.uuid4() for _ in range(size)]
        return [decided(incidents[i], [schools[i % 5]], f"Child{i}", 0) for i in range(size)
                ] + [unmatched(i, la, "Bisi", 1) for i in incidents]

    with statements(notifier_engine) as one:
        await apply_poll(deps, poll(1))
    with statements(notifier_engine) as fifty, executemanys(notifier_engine) as per_row:
        await apply_poll(deps, poll(50))
    assert fifty == one  # word for word: each statement is prepared once, whatever the count
    assert per_row == []  # each statement runs once for the poll (the outbox's was once a row)
    assert len(one) <= 2 * 13  # each run: locks, claims, withdrawn, versions, registry (3),
    # notifications (2), repeats, children, events


async def test_two_children_of_one_incident_at_one_school_in_one_poll_share_one_notification(
    notifier_engine, deps
) -> None:
    school = await add_school(notifier_engine)
    incident_id = uuid.uuid4()
    await apply_poll(deps, [decided(incident_id, [school], "Zara", 0),
                            decided(incident_id, [school], "Tomi", 1)])
    n, c = notifications.c, notification_children.c
    async with notifier_engine.connect() as conn:
        rows = (await conn.execute(select(n.id, n.recipient_key).where(
            n.incident_id == incident_id))).all()
        kids = set((await conn.execute(select(c.child_id).where(
            c.notification_id.in_([r.id for r in rows])))).scalars())
    assert [r.recipient_key for r in rows] == [f"school:{school.urn}"]
    assert kids == {child_id_for(incident_id, 0), child_id_for(incident_id, 1)}


async def test_a_poll_delivered_again_adds_nothing(
    notifier_engine, deps, clock, settings
) -> None:
    world = await new_world(deps, clock)
    poll = world.poll()
    await apply_poll(deps, poll)
    before = await seen(notifier_engine, settings, world)
    clock.now = MATCHED_AT + timedelta(minutes=5)
    await apply_poll(deps, poll)
    assert await seen(notifier_engine, settings, world) == before
