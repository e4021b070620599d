"""A committed poll wakes the worker's outbox relay: what a handler staged is published at
once, not at the relay's next poll (the notifier's NotificationScheduled waited up to half a
second for it, so bench.e2e's 202 → scheduled was 0.3 s behind the rows' own times)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import insert

from services.common.db import UnitOfWork, service_engine
from services.common.kafka import ensure_topics, make_producer
from services.common.models import outbox
from services.common.runner import Worker
from services.common.settings import Settings, TopicLayout
from tests.support.ids import next_tag
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration
HOUR = 3600.0


async def test_a_committed_poll_wakes_the_relay(settings: Settings) -> None:
    tag = next_tag()
    inbound, outbound = settings.topic(f"wake-in-{tag}.v1"), settings.topic(f"wake-out-{tag}.v1")
    source = f"test-wake-{tag}"
    await ensure_topics(settings.kafka(), [inbound, f"{inbound}.dlq", outbound],
                        layout=TopicLayout(partitions=1))
    engine = service_engine(settings, "matcher", pool_size=3)

    async def handle_batch(records: list[ConsumerRecord[bytes, bytes]]) -> None:
        async with UnitOfWork(engine) as uow:
            await uow.conn.execute(insert(outbox), [
                {"source": source, "topic": outbound, "key": "k", "event_id": uuid.uuid4(),
                 "value": record.value} for record in records])
            await uow.commit()

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        await handle_batch([record])

    # the relay's own poll and its lease's renewal are an hour away: only a wake-up is soon
    worker = Worker(kafka=settings.kafka(), engine=engine, source=source,
                    group_id=f"test-wake-{tag}", consume=[inbound], produce=[outbound],
                    handle=handle, handle_batch=handle_batch, relay_lease_s=3 * HOUR,
                    relay_poll_s=HOUR)
    producer = make_producer(settings.kafka())
    await producer.start()
    worker.start()
    try:
        # the first may go out on the relay's first pass; once it is out, the relay waits
        await producer.send_and_wait(inbound, b"first", key=b"k")
        assert len(await read_topic(settings.kafka(), outbound, at_least=1, timeout_s=90)) == 1
        await producer.send_and_wait(inbound, b"second", key=b"k")
        records = await read_topic(settings.kafka(), outbound, at_least=2, timeout_s=30)
        # was [b"first"]: the second waited for the relay's next poll, an hour away
        assert [record.value for record in records] == [b"first", b"second"]
    finally:
        await worker.stop()
        await producer.stop()
        await engine.dispose()
