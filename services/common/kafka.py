"""Kafka helpers: idempotent producer, topic creation, a manual-commit consumer loop with DLQ."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.structs import RecordMetadata

from schemas.envelope import parse_envelope
from schemas.registry import EVENT_TYPES
from services.common.errors import is_transient
from services.common.logs import bind_event, event_log_fields
from services.common.sealing import NO_KEYS, ChildSealing
from services.common.settings import KafkaConnection, TopicLayout

log = logging.getLogger(__name__)

Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]
BatchHandler = Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]]
# after each poll: the consumer and, per partition with records in hand, the first offset
LagObserver = Callable[[AIOKafkaConsumer, Mapping[TopicPartition, int]], Awaitable[None]]


def make_producer(kafka: KafkaConnection, *, request_timeout_ms: int = 5000) -> AIOKafkaProducer:
    """An idempotent producer: acks=all, no duplicates on retry, small linger for batching."""
    # Kafka 3.0+ (KIP-679) lets an idempotent producer in with WRITE on a topic alone: no
    # IdempotentWrite on the cluster
    return AIOKafkaProducer(
        **kafka.producer_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=request_timeout_ms,
        retry_backoff_ms=100,
    )


async def ensure_topics(
    kafka: KafkaConnection, topics: Iterable[str], *, layout: TopicLayout = TopicLayout(),
    timeout_s: float = 30,
) -> None:
    """Create each topic that does not exist yet (idempotent).

    A deployment's topics are made by `daybreak kafka setup` as admin; the services' own
    principals may only see them, so for them this finds nothing missing and creates nothing.
    """
    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=10000)
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())  # only the topics we may DESCRIBE
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return
        with contextlib.suppress(TopicAlreadyExistsError):
            response = await admin.create_topics([
                NewTopic(name=t, num_partitions=layout.partitions,
                         replication_factor=layout.replication_factor,
                         topic_configs=layout.configs(t))
                for t in missing
            ])
            _raise_topic_errors(response)
    finally:
        await admin.close()


def _raise_topic_errors(response: Any) -> None:
    # create_topics reports per-topic errors in the response instead of raising them
    for topic_error in response.topic_errors:
        code = topic_error[1]
        if code not in (0, TopicAlreadyExistsError.errno):
            raise for_code(code)(f"creating topic {topic_error[0]}")


def make_consumer(kafka: KafkaConnection, *topics: str, group_id: str) -> AIOKafkaConsumer:
    """A consumer that never auto-commits: offsets move only after our transaction commits."""
    return AIOKafkaConsumer(
        *topics,
        **kafka.consumer_options(),
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
    handle_batch: BatchHandler | None = None,
    on_lag: LagObserver | None = None,
) -> None:
    """Poll in batches, handle each record, commit its offset only after the handler returned.

    With `handle_batch`, the whole poll (every partition's records, each partition's in its
    order) is first offered in one call: one transaction and one offset commit a poll, however
    many partitions it spans, which is what keeps a lightly loaded consumer (a record or two
    per partition a poll) from paying a transaction per partition. If that fails on the data,
    the records are handled one by one, so a poison message still reaches the dead-letter
    topic alone. Partitions carry no order between them, so joining them changes no order a
    handler may rely on. `on_lag` hears the lag.
    """
    while not stop.is_set():
        batches: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = await consumer.getmany(
            timeout_ms=200
        )
        if on_lag is not None:
            await on_lag(consumer, {tp: records[0].offset for tp, records in batches.items()})
        if not batches:
            continue
        polled = [record for records in batches.values() for record in records]
        if handle_batch is None or not await _batch(polled, handle_batch, retry_delay_s):
            for record in polled:
                await _handle_with_retries(record, handle, dead_letters, retry_delay_s)
        # each handler committed its own transaction and skips event ids it has seen, so one
        # offset commit per poll is enough, and a commit lost to a rebalance only means the
        # new owner skips these records again
        try:
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
        except (CommitFailedError, IllegalStateError) as exc:
            log.info("offset commit skipped after rebalance: %s", type(exc).__name__)


async def _batch(
    records: list[ConsumerRecord[bytes, bytes]], handle_batch: BatchHandler, retry_delay_s: float
) -> bool:
    """True when the batch handler took every record; False to fall back to one by one."""
    while True:
        try:
            await handle_batch(records)
            return True
        except Exception as exc:
            if not is_transient(exc):
                log.warning("batch failed on %s; handling records one by one",
                            type(exc).__name__)
                return False
            log.warning("batch waiting on infrastructure: %s", type(exc).__name__)
            await asyncio.sleep(min(5.0, retry_delay_s * 4))


async def _handle_with_retries(
    record: ConsumerRecord[bytes, bytes],
    handle: Handler,
    dead_letters: DeadLetters,
    retry_delay_s: float,
) -> None:
    attempt = 0
    bind_event(None)  # the handler binds this record's ids in this same context
    while True:
        try:
            await handle(record)
            return
        except Exception as exc:
            if is_transient(exc):
                # the broker or database is away: not the message's fault, so never dead-letter
                log.warning("handler waiting on infrastructure: %s", type(exc).__name__,
                            extra=event_log_fields())
                await asyncio.sleep(min(5.0, retry_delay_s * 4))
                continue
            attempt += 1
            log.warning(
                "handler failed on %s/%d/%d attempt %d: %s",
                record.topic, record.partition, record.offset, attempt, type(exc).__name__,
                extra=event_log_fields(),
            )
            if attempt >= dead_letters.max_attempts:
                await dead_letters.send(record, exc)
                log.error("message dead-lettered from %s/%d/%d", record.topic,
                          record.partition, record.offset, extra=event_log_fields())
                return
            await asyncio.sleep(retry_delay_s * attempt)


class KafkaPublisher:
    """Publishes in Kafka transactions, many requests per transaction (group commit).

    A caller's `publish` returns only once its transaction committed (acks=all). If the broker
    does not answer in time the caller gets the error and the transaction is never committed:
    the next producer reuses the transactional id, which fences the old one and aborts what it
    left open, so a refused message cannot surface later for read_committed consumers.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        *,
        topics: Iterable[str],
        layout: TopicLayout = TopicLayout(),
        request_timeout_ms: int = 5000,
        transactional_id: str | None = None,
        max_batch: int = 500,
        sealing: ChildSealing = NO_KEYS,
    ) -> None:
        self.kafka = kafka
        self.sealing = sealing
        self.topics = tuple(topics)
        self.layout = layout
        self.timeout_s = request_timeout_ms / 1000
        self.transactional_id = transactional_id or f"daybreak-{uuid.uuid4().hex}"
        self.max_batch = max_batch
        self._producer: AIOKafkaProducer | None = None
        self._reader: AIOKafkaConsumer | None = None  # sees what read_committed consumers see
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def publish(self, topic: str, *, key: str, value: bytes) -> None:
        """Send one message; return once its transaction committed on every in-sync replica and
        read_committed consumers can see it."""
        await self.publish_many([Message(topic, key, value)])

    async def publish_many(self, messages: Iterable[Message]) -> None:
        """Send these messages in one Kafka transaction (never split over two, though other
        callers' may share it); return once it committed and read_committed consumers can see
        every one, or raise and none of them is ever visible. Each event's child data is
        sealed here, before it leaves the process (refused if this publisher has no
        keystore)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        records = [(m.topic, m.key.encode(), self.sealing.wire_bytes(m.value))
                   for m in messages]
        if not records:
            return
        self._queue.put_nowait(_Pending(records, done))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run())
        await done

    async def producer(self) -> AIOKafkaProducer:
        """The started transactional producer; creates the topics and connects if needed."""
        async with self._lock:  # two producers with one transactional id would fence each other
            return await self._start_producer()

    async def _start_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            await ensure_topics(
                self.kafka, self.topics, layout=self.layout, timeout_s=self.timeout_s
            )
            producer = AIOKafkaProducer(
                **self.kafka.producer_options(),
                acks="all",
                enable_idempotence=True,
                transactional_id=self.transactional_id,
                transaction_timeout_ms=max(10_000, int(self.timeout_s * 2000)),
                request_timeout_ms=int(self.timeout_s * 1000),
                linger_ms=0,
                # back-to-back transactions meet CONCURRENT_TRANSACTIONS while the previous
                # commit's markers are written: retry in 5 ms, not the default 100 ms
                retry_backoff_ms=5,
            )
            try:
                await asyncio.wait_for(producer.start(), self.timeout_s)
            except BaseException:
                _abandon(producer)
                raise
            self._producer = producer
        return self._producer

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].records)
            # whole callers only: a caller's messages share one transaction's fate
            while not self._queue.empty() and size < self.max_batch:
                batch.append(self._queue.get_nowait())
                size += len(batch[-1].records)
            try:
                producer = await asyncio.wait_for(self.producer(), self.timeout_s * 2)
                await asyncio.wait_for(self._commit(producer, batch), self.timeout_s)
            except Exception as exc:
                error = exc if not isinstance(exc, TimeoutError) else KafkaTimeoutError()
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(error)
                if self._producer is not None:
                    _abandon(self._producer)
                    self._producer = None
                continue
            for item in batch:
                if not item.done.done():
                    item.done.set_result(None)

    async def _commit(self, producer: AIOKafkaProducer, batch: list[_Pending]) -> None:
        await producer.begin_transaction()
        sends = [await producer.send(topic, value, key=key)
                 for i in batch for topic, key, value in i.records]
        # ask for the commit only once every record is acked: a commit requested and then
        # timed out would still complete in the background when the broker returns
        acked = await asyncio.gather(*sends)
        await producer.commit_transaction()
        # the coordinator answers before the commit markers reach the partitions; answer the
        # caller only once read_committed readers can see every record, so a marker lost in a
        # broker restart (seen once in the chaos tier) is a refusal the client retries, not a
        # silently dropped incident
        await self._until_visible(acked)

    async def _until_visible(self, acked: Iterable[RecordMetadata]) -> None:
        last: dict[TopicPartition, int] = {}
        for meta in acked:
            tp = TopicPartition(meta.topic, meta.partition)
            last[tp] = max(last.get(tp, -1), meta.offset)
        if self._reader is None:
            reader = AIOKafkaConsumer(
                **self.kafka.client_options(), isolation_level="read_committed",
                enable_auto_commit=False, request_timeout_ms=int(self.timeout_s * 1000))
            await reader.start()
            self._reader = reader
        pause = 0.001
        while True:
            stable = await self._reader.end_offsets(list(last))
            if all(stable[tp] > offset for tp, offset in last.items()):
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def ping(self) -> None:
        """Raise unless the broker answers a metadata request."""
        producer = await self.producer()
        await asyncio.wait_for(producer.client.fetch_all_metadata(), self.timeout_s)

    async def stop(self) -> None:
        """Stop the worker and close the producer."""
        if self._worker is not None:
            self._worker.cancel()
        if self._producer is not None:
            with contextlib.suppress(TimeoutError, KafkaError):
                await asyncio.wait_for(self._producer.stop(), self.timeout_s)
            self._producer = None
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, KafkaError):
                await asyncio.wait_for(self._reader.stop(), self.timeout_s)
            self._reader = None


@dataclass(frozen=True)
class Message:
    """One record to publish: its topic, its key (an id, never child data) and its bytes."""

    topic: str
    key: str
    value: bytes


@dataclass
class _Pending:
    records: list[tuple[str, bytes, bytes]]
    done: asyncio.Future[None]


_abandoned: set[asyncio.Task[None]] = set()


def _abandon(producer: AIOKafkaProducer) -> None:
    """Close a producer in the background; it may hang while the broker is away."""

    async def close() -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 30)

    task = asyncio.create_task(close())
    _abandoned.add(task)
    task.add_done_callback(_abandoned.discard)


async def partitions_of(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of the given topics, from fresh cluster metadata."""
    # consumer.topics() returns a new snapshot without updating partitions_for_topic()
    cluster = await consumer._client.fetch_all_metadata()
    return [
        TopicPartition(t, p)
        for t in sorted(set(topics))
        for p in sorted(cluster.partitions_for_topic(t) or ())
    ]


async def read_to_end(
    consumer: AIOKafkaConsumer, topic: str
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` from its start up to its end offsets at the time of the call,
    on a started consumer without a group (it is assigned the topic's partitions)."""
    tps = await partitions_of(consumer, [topic])
    if not tps:
        return []
    ends = await consumer.end_offsets(tps)
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    out: list[ConsumerRecord[bytes, bytes]] = []
    pending = {tp for tp in tps if ends[tp] > 0}
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=1000)
        for tp, records in batch.items():
            out.extend(r for r in records if r.offset < ends[tp])
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    return out


async def dispatch_record(
    record: ConsumerRecord[bytes, bytes],
    handlers: dict[str, Callable[..., Awaitable[None]]],
    *,
    deps: object,
) -> None:
    """Parse the envelope and call its type's handler; unknown types are skipped, not failed."""
    envelope = parse_envelope(record.value, EVENT_TYPES)
    bind_event(envelope)
    handler = handlers.get(envelope.type)
    if handler is None:
        log.info("skipping event type", extra=event_log_fields())
        return
    await handler(envelope, deps=deps)


async def broker_answers(kafka: KafkaConnection, *, timeout_s: float = 3) -> None:
    """Raise unless the broker answers a metadata request (a readiness check)."""
    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
    finally:
        await admin.close()
