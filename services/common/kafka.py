"""Kafka helpers: idempotent producer, topic creation, a manual-commit consumer loop with DLQ."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.common.errors import is_transient

log = logging.getLogger(__name__)

Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]


def make_producer(bootstrap: str, *, request_timeout_ms: int = 5000) -> AIOKafkaProducer:
    """An idempotent producer: acks=all, no duplicates on retry, small linger for batching."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=request_timeout_ms,
        retry_backoff_ms=100,
    )


async def ensure_topics(
    bootstrap: str, topics: Iterable[str], *, partitions: int = 3, timeout_s: float = 30
) -> None:
    """Create each topic that does not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return
        try:
            await admin.create_topics(
                [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in missing]
            )
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()


def make_consumer(bootstrap: str, *topics: str, group_id: str) -> AIOKafkaConsumer:
    """A consumer that never auto-commits: offsets move only after our transaction commits."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=500,
    )


class DeadLetters:
    """Sends a message that failed `max_attempts` times to the topic's `.dlq` twin."""

    def __init__(self, producer: AIOKafkaProducer, *, max_attempts: int = 5) -> None:
        self.producer = producer
        self.max_attempts = max_attempts

    async def send(self, record: ConsumerRecord[bytes, bytes], error: BaseException) -> None:
        """Park a message with the error's class name (never its text, which may hold data)."""
        headers = [
            *(record.headers or ()),
            ("dlq-error", type(error).__name__.encode()),
            ("dlq-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        await self.producer.send_and_wait(
            f"{record.topic}.dlq", record.value, key=record.key, headers=headers
        )


async def run_consumer(
    consumer: AIOKafkaConsumer,
    handle: Handler,
    *,
    dead_letters: DeadLetters,
    stop: asyncio.Event,
    retry_delay_s: float = 0.2,
) -> None:
    """Poll in batches, handle each record, commit its offset only after the handler returned."""
    while not stop.is_set():
        batches: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = await consumer.getmany(
            timeout_ms=200
        )
        for tp, records in batches.items():
            for record in records:
                await _handle_with_retries(record, handle, dead_letters, retry_delay_s)
                await consumer.commit({tp: record.offset + 1})


async def _handle_with_retries(
    record: ConsumerRecord[bytes, bytes],
    handle: Handler,
    dead_letters: DeadLetters,
    retry_delay_s: float,
) -> None:
    attempt = 0
    while True:
        try:
            await handle(record)
            return
        except Exception as exc:
            if is_transient(exc):
                # the broker or database is away: not the message's fault, so never dead-letter
                log.warning("handler waiting on infrastructure: %s", type(exc).__name__)
                await asyncio.sleep(min(5.0, retry_delay_s * 4))
                continue
            attempt += 1
            log.warning(
                "handler failed on %s/%d/%d attempt %d: %s",
                record.topic, record.partition, record.offset, attempt, type(exc).__name__,
            )
            if attempt >= dead_letters.max_attempts:
                await dead_letters.send(record, exc)
                return
            await asyncio.sleep(retry_delay_s * attempt)


class KafkaPublisher:
    """A producer started on first use (and again after failures), awaiting acks=all per send."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topics: Iterable[str],
        partitions: int = 3,
        request_timeout_ms: int = 5000,
    ) -> None:
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.topics = tuple(topics)
        self.request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def producer(self) -> AIOKafkaProducer:
        """The started producer; creates the topics and connects if needed."""
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                timeout_s = self.request_timeout_ms / 1000
                await ensure_topics(
                    self.bootstrap, self.topics, partitions=self.partitions, timeout_s=timeout_s
                )
                producer = make_producer(
                    self.bootstrap, request_timeout_ms=self.request_timeout_ms
                )
                try:
                    await asyncio.wait_for(producer.start(), timeout_s)
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def publish(self, topic: str, *, key: str, value: bytes) -> None:
        """Send one message and wait until every in-sync replica has it."""
        producer = await self.producer()
        # never cancel the delivery future: a cancelled send may still land later
        future = await producer.send(topic, value, key=key.encode())
        await future

    async def ping(self) -> None:
        """Raise unless the broker answers a metadata request."""
        producer = await self.producer()
        await asyncio.wait_for(producer.client.fetch_all_metadata(), 5)

    async def stop(self) -> None:
        """Flush and close."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


async def partitions_of(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of the given topics, from fresh cluster metadata."""
    # consumer.topics() returns a new snapshot without updating partitions_for_topic()
    cluster = await consumer._client.fetch_all_metadata()
    return [
        TopicPartition(t, p)
        for t in sorted(set(topics))
        for p in sorted(cluster.partitions_for_topic(t) or ())
    ]
