"""The consumer loop: offsets move only after handling; poison messages reach the DLQ."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import ConsumerRecord

from services.common.db import service_engine
from services.common.idempotency import claim_event
from services.common.kafka import (
    DeadLetters,
    ensure_topics,
    make_consumer,
    make_producer,
    run_consumer,
)
from services.common.settings import TopicLayout
from tests.support.ids import next_tag
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


async def test_poison_message_goes_to_dlq_after_n_attempts_and_others_flow(settings) -> None:
    topic = settings.topic("loop.v1")
    await ensure_topics(settings.kafka(), [topic, f"{topic}.dlq"],
                        layout=TopicLayout(partitions=1))
    producer = make_producer(settings.kafka())
    await producer.start()
    for value in (b"ok-1", b"poison", b"ok-2"):
        await producer.send_and_wait(topic, value, key=b"k")
    attempts: dict[bytes, int] = {}
    handled: list[bytes] = []

    async def handle(record: ConsumerRecord) -> None:
        attempts[record.value] = attempts.get(record.value, 0) + 1
        if record.value == b"poison":
            raise ValueError("contains a child's name")
        handled.append(record.value)

    group = f"g-{next_tag()}"
    consumer = make_consumer(settings.kafka(), topic, group_id=group)
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumer(
        consumer, handle, dead_letters=DeadLetters(producer, max_attempts=3), stop=stop,
        retry_delay_s=0.01))
    dead = await read_topic(settings.kafka(), f"{topic}.dlq", at_least=1)
    for _ in range(50):
        if len(handled) == 2:
            break
        await asyncio.sleep(0.1)
    stop.set()
    await task
    await consumer.stop()

    assert handled == [b"ok-1", b"ok-2"]
    assert attempts[b"poison"] == 3
    assert [r.value for r in dead] == [b"poison"]
    headers = dict(dead[0].headers)
    assert headers["dlq-error"] == b"ValueError"
    assert b"child" not in b"".join(v for _, v in dead[0].headers)

    # a restarted consumer in the same group resumes after the committed offsets
    again = make_consumer(settings.kafka(), topic, group_id=group)
    await again.start()
    leftovers = await again.getmany(timeout_ms=1500)
    await again.stop()
    await producer.stop()
    assert sum(len(v) for v in leftovers.values()) == 0


async def test_processed_event_is_claimed_once(settings) -> None:
    engine = service_engine(settings, "matcher", pool_size=1)
    event_id = uuid.uuid4()
    try:
        async with engine.begin() as conn:
            assert await claim_event(conn, consumer="c", event_id=event_id)
            assert not await claim_event(conn, consumer="c", event_id=event_id)
            assert await claim_event(conn, consumer="other", event_id=event_id)
    finally:
        await engine.dispose()


async def test_batch_handler_takes_a_poll_and_falls_back_to_records_on_bad_data(settings) -> None:
    topic = settings.topic("batch.v1")
    await ensure_topics(settings.kafka(), [topic, f"{topic}.dlq"],
                        layout=TopicLayout(partitions=1))
    producer = make_producer(settings.kafka())
    await producer.start()
    for value in (b"a", b"b", b"c"):
        await producer.send_and_wait(topic, value, key=b"k")
    batches: list[list[bytes]] = []
    singles: list[bytes] = []

    async def handle_batch(records: list[ConsumerRecord]) -> None:
        batches.append([r.value for r in records])
        if b"poison" in batches[-1]:
            raise ValueError("bad data somewhere in the batch")

    async def handle(record: ConsumerRecord) -> None:
        if record.value == b"poison":
            raise ValueError("bad data")
        singles.append(record.value)

    consumer = make_consumer(settings.kafka(), topic, group_id=f"g-{next_tag()}")
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumer(
        consumer, handle, dead_letters=DeadLetters(producer, max_attempts=2), stop=stop,
        retry_delay_s=0.01, handle_batch=handle_batch))
    for _ in range(50):
        if sum(len(b) for b in batches) >= 3:
            break
        await asyncio.sleep(0.1)
    await producer.send_and_wait(topic, b"poison", key=b"k")
    await producer.send_and_wait(topic, b"d", key=b"k")
    dead = await read_topic(settings.kafka(), f"{topic}.dlq", at_least=1)
    for _ in range(50):
        if b"d" in singles or any(b"d" in b and b"poison" not in b for b in batches):
            break
        await asyncio.sleep(0.1)
    stop.set()
    await task
    await consumer.stop()
    await producer.stop()

    taken = {v for b in batches if b"poison" not in b for v in b} | set(singles)
    assert taken == {b"a", b"b", b"c", b"d"}
    assert batches[0] == [b"a", b"b", b"c"]  # the first poll reached the batch handler whole
    assert [r.value for r in dead] == [b"poison"]
    assert b"poison" not in singles


class OnePoll:
    """A consumer whose first getmany answers `poll` (records read from the broker), then
    stops the loop: what a poll across partitions is, without waiting for one to happen."""

    def __init__(self, poll: dict, stop: asyncio.Event) -> None:
        self.poll, self.stop, self.commits = poll, stop, []

    async def getmany(self, timeout_ms: int = 0) -> dict:
        poll, self.poll = self.poll, {}
        if not poll:
            self.stop.set()
        return poll

    async def commit(self, offsets: dict) -> None:
        self.commits.append(dict(offsets))


async def test_a_poll_across_partitions_is_one_batch_and_one_commit(settings) -> None:
    topic = settings.topic("spread.v1")
    await ensure_topics(settings.kafka(), [topic, f"{topic}.dlq"],
                        layout=TopicLayout(partitions=3))
    producer = make_producer(settings.kafka())
    await producer.start()
    sent = {(p, f"{p}-{n}".encode()) for p in range(3) for n in range(2)}
    for partition, value in sorted(sent):
        await producer.send_and_wait(topic, value, partition=partition)
    reader = make_consumer(settings.kafka(), topic, group_id=f"g-{next_tag()}")
    await reader.start()
    poll: dict = {}
    for _ in range(50):
        for tp, records in (await reader.getmany(timeout_ms=500)).items():
            poll.setdefault(tp, []).extend(records)
        if sum(len(r) for r in poll.values()) >= len(sent):
            break
    await reader.stop()
    assert len(poll) == 3
    batches: list[list[tuple[int, bytes]]] = []

    async def handle_batch(records: list[ConsumerRecord]) -> None:
        batches.append([(r.partition, r.value) for r in records])

    async def handle(record: ConsumerRecord) -> None:
        raise AssertionError("no record needs handling alone")

    stop = asyncio.Event()
    consumer = OnePoll(poll, stop)
    await run_consumer(consumer, handle, dead_letters=DeadLetters(producer), stop=stop,  # type: ignore[arg-type]
                       retry_delay_s=0.01, handle_batch=handle_batch)
    await producer.stop()

    # every partition's records (each partition's in order) in one call, one commit of all
    assert len(batches) == 1 and len(consumer.commits) == 1
    assert set(batches[0]) == sent
    for partition in range(3):
        mine = [v for p, v in batches[0] if p == partition]
        assert mine == [f"{partition}-0".encode(), f"{partition}-1".encode()]
    assert {tp.partition: o for tp, o in consumer.commits[0].items()} == {0: 2, 1: 2, 2: 2}
