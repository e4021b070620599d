"""Transactional outbox and its relay: state and its event commit together, published once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import (
    ARRAY,
    BigInteger,
    LargeBinary,
    String,
    Uuid,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.envelope import Envelope
from services.common.db import any_of
from services.common.lease import Lease, LeaseLost
from services.common.models import outbox, outbox_inflight
from services.common.sealing import sealing_of
from services.common.settings import KafkaConnection

log = logging.getLogger(__name__)
HEADER = "daybreak-outbox"


async def add_to_outbox(
    conn: AsyncConnection, *, source: str, topic: str, key: str, envelope: Envelope[Any]
) -> None:
    """Stage an event in the caller's transaction; the relay publishes it after commit. Its
    child data is sealed with the keyring the connection's engine carries (sealing.py).

    `source` is the service's name under the deployment's topic prefix, so deployments (and
    tests) sharing one database never publish each other's rows.
    """
    await conn.execute(
        insert(outbox).values(
            source=source, topic=topic, key=key, event_id=envelope.event_id,
            value=sealing_of(conn).envelope_bytes(envelope),
        )
    )


def _staging() -> Any:
    """INSERT … SELECT over one array per column, rows in the arrays' order (the ids they
    take, and so the relay's order): one text however many rows, executed once, where an
    executemany was one execution a row (3.3 a notifier's incident in bench.e2e --statements)."""
    rows = func.unnest(
        bindparam("topics", type_=ARRAY(String)), bindparam("keys", type_=ARRAY(String)),
        bindparam("event_ids", type_=ARRAY(Uuid)), bindparam("values", type_=ARRAY(LargeBinary)),
    ).table_valued("topic", "key", "event_id", "value", with_ordinality="n").render_derived()
    return insert(outbox).from_select(
        ["source", "topic", "key", "event_id", "value"],
        select(bindparam("source", type_=String), rows.c.topic, rows.c.key, rows.c.event_id,
               rows.c.value).select_from(rows).order_by(rows.c.n))


_STAGE = _staging()


async def add_all_to_outbox(
    conn: AsyncConnection, *, source: str, staged: list[tuple[str, str, Envelope[Any]]]
) -> None:
    """Stage many `(topic, key, envelope)` events in one statement, in order."""
    if staged:
        sealing = sealing_of(conn)
        await conn.execute(_STAGE, {
            "source": source, "topics": [topic for topic, _, _ in staged],
            "keys": [key for _, key, _ in staged],
            "event_ids": [envelope.event_id for _, _, envelope in staged],
            "values": [sealing.envelope_bytes(envelope) for _, _, envelope in staged]})


async def purge_published(conn: AsyncConnection, *, source: str, before: datetime) -> int:
    """Delete one source's rows published before `before` (values, keys and all); returns how
    many. Unpublished rows are never touched: the relay still owes them to the topic."""
    # the relay's crash recovery reads outbox_inflight and unpublished rows only (a row is
    # marked published in the transaction that clears it from outbox_inflight), so a
    # published row is needed by nothing but an operator looking back
    result = await conn.execute(delete(outbox).where(
        outbox.c.source == source, outbox.c.published_at < before))
    return int(result.rowcount)


class OutboxRelay:
    """Publishes one source's outbox rows in order, exactly once even across crashes.

    Before sending a batch the relay records the partitions' end offsets; after a crash
    between send and mark it scans from those offsets and marks what already arrived.
    A lease row keeps one active relay per source (services/common/lease.py): both records
    are written under it, so a relay that lost it records and marks nothing more.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        kafka: KafkaConnection,
        source: str,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        lease_seconds: float = 10.0,
        holder: uuid.UUID | None = None,
        after_send: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.kafka = kafka
        self.source = source
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.lease = Lease(source=source, seconds=lease_seconds, holder=holder)
        self.leases_lost = 0
        self._after_send = after_send
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Tell the relay new rows were committed."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set, whenever this relay holds the source's lease."""
        # no group: it reads end offsets, and after a crash scans what it produced itself
        consumer = AIOKafkaConsumer(**self.kafka.client_options(), enable_auto_commit=False)
        await consumer.start()
        try:
            while not stop.is_set():
                if not await self.lease.acquire(self.engine):
                    await _wait(stop, self.poll_interval_s)
                    continue
                try:
                    await self._lead(consumer, stop)
                except LeaseLost:
                    self.leases_lost += 1
                    log.warning("outbox %s: lease taken by another relay; standing down",
                                self.source)
        finally:
            try:
                await self.lease.release(self.engine)
            except Exception as exc:  # it expires on its own: the crash is what to report
                log.warning("outbox %s: lease not released (%s)", self.source,
                            type(exc).__name__)
            await consumer.stop()

    async def _lead(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        await self.recover(consumer)
        while not stop.is_set():
            if self.lease.renew_due():
                await self.lease.renew(self.engine)
            # cleared before the read, so rows committed while a batch is out wake the next
            self._wake.clear()
            if await self.publish_batch(consumer) < self.batch_size:
                await _wait_any(stop, self._wake,
                                min(self.poll_interval_s, self.lease.renew_every))

    async def publish_batch(self, consumer: AIOKafkaConsumer) -> int:
        """Send the next batch of unpublished rows and mark them; returns how many."""
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value)
                    .where(outbox.c.source == self.source, outbox.c.published_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self.batch_size)
                )
            ).all()
        if not rows:
            return 0
        ids = [r.id for r in rows]
        offsets = await self._end_offsets(consumer, {r.topic for r in rows})
        async with self.engine.begin() as conn:
            await self.lease.fence(conn)
            stmt = pg_insert(outbox_inflight).values(
                source=self.source, start_offsets=offsets, outbox_ids=ids
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["source"],
                    set_={"start_offsets": offsets, "outbox_ids": ids},
                )
            )
        futures = [
            await self.producer.send(
                r.topic, r.value, key=r.key.encode(),
                headers=[(HEADER, f"{self.source}:{r.id}".encode())],
            )
            for r in rows
        ]
        await asyncio.gather(*futures)
        if self._after_send is not None:
            await self._after_send()
        await self._mark_published(ids)
        return len(rows)

    async def recover(self, consumer: AIOKafkaConsumer) -> None:
        """After a crash mid-batch, mark as published what already reached the topic."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(outbox_inflight).where(outbox_inflight.c.source == self.source)
                )
            ).first()
        if row is None:
            return
        wanted = {f"{self.source}:{i}".encode(): i for i in row.outbox_ids}
        seen = await _scan_for_headers(consumer, row.start_offsets, set(wanted))
        log.info("outbox %s recovered: %d of %d already published", self.source,
                 len(seen), len(wanted))
        await self._mark_published([wanted[h] for h in seen])

    async def _end_offsets(
        self, consumer: AIOKafkaConsumer, topics: set[str]
    ) -> dict[str, int]:
        # the producer's cached metadata, not a fetch of the whole cluster's per batch
        tps = [
            TopicPartition(t, p)
            for t in sorted(topics)
            for p in sorted(await self.producer.partitions_for(t))
        ]
        ends = await consumer.end_offsets(tps)
        return {f"{tp.topic}:{tp.partition}": off for tp, off in ends.items()}

    async def _mark_published(self, ids: list[int]) -> None:
        async with self.engine.begin() as conn:
            await self.lease.fence(conn)
            if ids:
                await conn.execute(
                    update(outbox).where(outbox.c.id == any_of(ids, of=BigInteger))
                    .values(published_at=func.now())
                )
            await conn.execute(
                delete(outbox_inflight).where(outbox_inflight.c.source == self.source)
            )


async def _scan_for_headers(
    consumer: AIOKafkaConsumer, start_offsets: dict[str, int], wanted: set[bytes]
) -> set[bytes]:
    starts = {
        TopicPartition(k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1])): v
        for k, v in start_offsets.items()
    }
    ends = await consumer.end_offsets(list(starts))
    pending = {tp for tp in starts if ends[tp] > starts[tp]}
    consumer.assign(list(pending))
    for tp in pending:
        consumer.seek(tp, starts[tp])
    seen: set[bytes] = set()
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=1000)
        for tp, records in batch.items():
            for rec in records:
                seen.update(v for k, v in rec.headers if k == HEADER and v in wanted)
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    consumer.assign([])
    return seen


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


