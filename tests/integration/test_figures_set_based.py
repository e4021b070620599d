"""The figures' read model takes a poll's NotificationScheduled and ChildOutcome events in a
few statements however many, and ends with the same rows as applying them one by one."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import Envelope, wrap
from schemas.notifications import LifecycleEvent, NotificationScheduled
from services.common.db import UnitOfWork
from services.common.events import apply_values
from services.notifier.figures_store import (
    HANDLERS,
    FiguresDeps,
    figures_children,
    figures_notifications,
    figures_reviews,
)
from tests.integration.test_figures import DEADLINE, MON, outcome
from tests.support.db import executemanys, statements
from tests.support.ids import next_force, next_la, next_urn

pytestmark = pytest.mark.integration


def scheduled(la: str, force: str, notification: uuid.UUID, incident: uuid.UUID, *,
              child: int, hours: int) -> NotificationScheduled:
    return NotificationScheduled(
        incident_id=incident, notification_id=notification, force_code=force,
        school_urn=next_urn(), la_code=la, at=MON + timedelta(hours=hours),
        recipient_role="school", child_indexes=[child], push_at=MON + timedelta(hours=hours),
        deadline_at=DEADLINE + timedelta(hours=hours), repeat_children=child + 1)


def poll(size: int) -> list[LifecycleEvent]:
    """`size` notifications, each scheduled then joined by a second child (later, in the same
    poll, so one row twice) and each child's outcome, one of them a review opened and then
    resolved in the same poll: interleaved as the notifier produces them."""
    la, force = next_la(), next_force("F")
    events: list[LifecycleEvent] = []
    for k in range(size):
        notification, incident = uuid.uuid4(), uuid.uuid4()
        review = uuid.uuid4() if k == 0 else None
        events += [scheduled(la, force, notification, incident, child=0, hours=0),
                   outcome(la, force, "review", review=review, incident=incident),
                   scheduled(la, force, notification, incident, child=1, hours=2)]
        if review is not None:
            events.append(outcome(la, force, "matched", at=MON + timedelta(hours=1),
                                  review=review, by_review=True, incident=incident))
    return events


async def apply(engine: AsyncEngine, envelopes: list[Envelope[Any]]) -> None:
    async with UnitOfWork(engine) as uow:
        await apply_values([e.to_bytes() for e in envelopes], HANDLERS,
                           deps=FiguresDeps(engine), uow=uow)
        await uow.commit()


async def rows_of(engine: AsyncEngine, events: list[LifecycleEvent]) -> dict[str, list[Any]]:
    incidents = list({e.incident_id for e in events})
    tables = (figures_notifications, figures_children, figures_reviews)
    async with engine.connect() as conn:
        return {t.name: sorted(tuple(str(v) for v in row) for row in (await conn.execute(
            select(t).where(t.c.incident_id.in_(incidents)))).all()) for t in tables}


async def forget(engine: AsyncEngine, events: list[LifecycleEvent]) -> None:
    incidents = list({e.incident_id for e in events})
    async with engine.begin() as conn:
        for t in (figures_notifications, figures_children, figures_reviews):
            await conn.execute(delete(t).where(t.c.incident_id.in_(incidents)))


async def test_a_poll_ends_with_the_rows_one_by_one_gives(notifier_engine: AsyncEngine) -> None:
    events = poll(6)
    envelopes = [wrap(e, occurred_at=e.at) for e in events]
    for envelope in envelopes:
        await apply(notifier_engine, [envelope])
    one_by_one = await rows_of(notifier_engine, events)
    await forget(notifier_engine, events)
    await apply(notifier_engine, envelopes)
    together = await rows_of(notifier_engine, events)
    assert together == one_by_one
    assert len(together["figures_notifications"]) == 6
    assert len(together["figures_reviews"]) == 1
    n = figures_notifications.c
    async with notifier_engine.connect() as conn:
        kept = (await conn.execute(select(n.repeat_children, n.deadline_at, n.last_scheduled_at)
                                   .where(n.incident_id == events[0].incident_id))).one()
        review = (await conn.execute(select(figures_reviews).where(
            figures_reviews.c.incident_id == events[0].incident_id))).one()
    # both schedules counted, the first's deadline held, the later schedule's time kept
    assert kept == (3, DEADLINE, MON + timedelta(hours=2))
    assert review.resolved_at - review.opened_at == timedelta(hours=1)
    await apply(notifier_engine, envelopes)  # redelivered: nothing changes
    assert await rows_of(notifier_engine, events) == together


async def test_a_poll_of_forty_takes_as_many_statements_as_a_poll_of_two(
    notifier_engine: AsyncEngine,
) -> None:
    small, large = poll(2), poll(40)
    with statements(notifier_engine) as two:
        await apply(notifier_engine, [wrap(e, occurred_at=e.at) for e in small])
    with statements(notifier_engine) as forty, executemanys(notifier_engine) as many:
        await apply(notifier_engine, [wrap(e, occurred_at=e.at) for e in large])
    assert len(forty) == len(two) <= 8
    assert many == []  # each statement runs once for the poll: was once per row
