"""The outbox relay publishes every row exactly once, even when it dies mid-batch."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from schemas.envelope import wrap
from schemas.incidents import IncidentWithdrawn
from services.common.db import UnitOfWork, service_engine
from services.common.kafka import ensure_topics, make_producer
from services.common.models import outbox
from services.common.outbox import OutboxRelay, add_to_outbox, purge_published
from services.common.settings import TopicLayout
from tests.support.ids import next_tag
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


class Crash(Exception):
    pass


async def stage(engine, topic: str, source: str, n: int) -> None:
    async with UnitOfWork(engine) as uow:
        for _ in range(n):
            incident_id = uuid.uuid4()
            event = IncidentWithdrawn(incident_id=incident_id, force_code="WMP",
                                      withdrawn_at="2026-11-22T08:00:00Z", reason="test")
            await add_to_outbox(uow.conn, source=source, topic=topic, key=str(incident_id),
                                envelope=wrap(event))
        await uow.commit()


async def test_relay_restarted_mid_batch_publishes_each_row_once(settings) -> None:
    topic = settings.topic("relay.v1")
    source = f"test-{next_tag()}"
    await ensure_topics(settings.kafka(), [topic],
                        layout=TopicLayout(partitions=2))
    engine = service_engine(settings, "matcher", pool_size=3)
    producer = make_producer(settings.kafka())
    await producer.start()
    try:
        await stage(engine, topic, source, 250)
        crashes = 0

        async def crash_after_first_send() -> None:
            nonlocal crashes
            if crashes == 0:
                crashes += 1
                raise Crash  # sent to Kafka, not yet marked published

        doomed = OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                             source=source, batch_size=100, after_send=crash_after_first_send)
        with pytest.raises(Crash):
            await doomed.run(asyncio.Event())
        assert len(await read_topic(settings.kafka(), topic, at_least=100)) == 100

        stop = asyncio.Event()
        relay = OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                            source=source, batch_size=100, poll_interval_s=0.1)
        task = asyncio.create_task(relay.run(stop))
        records = await read_topic(settings.kafka(), topic, at_least=250)
        await asyncio.sleep(0.5)
        stop.set()
        await task
        records = await read_topic(settings.kafka(), topic)
        event_ids = [r.value for r in records]
        assert len(records) == 250
        assert len(set(event_ids)) == 250
        async with engine.connect() as conn:
            left = (await conn.execute(
                select(func.count()).where(outbox.c.source == source,
                                           outbox.c.published_at.is_(None)))).scalar_one()
        assert left == 0
    finally:
        await producer.stop()
        await engine.dispose()


async def test_only_one_relay_per_source_is_active(settings) -> None:
    topic = settings.topic("relay.v1")
    source = f"test-{next_tag()}"
    await ensure_topics(settings.kafka(), [topic],
                        layout=TopicLayout(partitions=2))
    engine = service_engine(settings, "matcher", pool_size=4)
    producer = make_producer(settings.kafka())
    await producer.start()
    stop = asyncio.Event()
    try:
        await stage(engine, topic, source, 300)
        relays = [OutboxRelay(engine=engine, producer=producer,
                              kafka=settings.kafka(), source=source,
                              batch_size=50, poll_interval_s=0.05) for _ in range(2)]
        tasks = [asyncio.create_task(r.run(stop)) for r in relays]
        await read_topic(settings.kafka(), topic, at_least=300)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        assert len(await read_topic(settings.kafka(), topic)) == 300
    finally:
        await producer.stop()
        await engine.dispose()


async def test_purging_published_rows_mid_crash_leaves_recovery_whole(settings) -> None:
    topic = settings.topic("relay.v1")
    source = f"test-{next_tag()}"
    await ensure_topics(settings.kafka(), [topic], layout=TopicLayout(partitions=2))
    engine = service_engine(settings, "matcher", pool_size=3)
    producer = make_producer(settings.kafka())
    await producer.start()
    try:
        await stage(engine, topic, source, 150)
        sends = 0

        async def crash_on_second_send() -> None:
            nonlocal sends
            sends += 1
            if sends == 2:
                raise Crash  # the first batch marked published, the second only sent

        doomed = OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                             source=source, batch_size=50, after_send=crash_on_second_send)
        with pytest.raises(Crash):
            await doomed.run(asyncio.Event())
        async with UnitOfWork(engine) as uow:
            purged = await purge_published(uow.conn, source=source,
                                           before=datetime.now(UTC) + timedelta(days=1))
            await uow.commit()
        assert purged == 50  # the in-flight batch is unpublished, so kept for recovery

        stop = asyncio.Event()
        relay = OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                            source=source, batch_size=50, poll_interval_s=0.1)
        task = asyncio.create_task(relay.run(stop))
        await read_topic(settings.kafka(), topic, at_least=150)
        await asyncio.sleep(0.5)
        stop.set()
        await task
        assert len({r.value for r in await read_topic(settings.kafka(), topic)}) == 150
        assert len(await read_topic(settings.kafka(), topic)) == 150
        async with engine.connect() as conn:
            rows = (await conn.execute(select(outbox.c.published_at).where(
                outbox.c.source == source))).scalars().all()
        assert len(rows) == 100 and all(rows)
    finally:
        await producer.stop()
        await engine.dispose()
