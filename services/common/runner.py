"""Background work a service runs beside its HTTP API: a consumer loop and an outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.kafka import (
    BatchHandler,
    DeadLetters,
    LagObserver,
    ensure_topics,
    make_consumer,
    make_producer,
    run_consumer,
)
from services.common.outbox import OutboxRelay
from services.common.settings import KafkaConnection, TopicLayout

log = logging.getLogger(__name__)
Handler = Callable[..., Awaitable[None]]


class Worker:
    """Runs one consumer group and one outbox relay until stopped; restarts them after faults."""

    def __init__(
        self, *, kafka: KafkaConnection, engine: AsyncEngine, source: str, group_id: str,
        consume: list[str], produce: list[str], handle: Handler,
        layout: TopicLayout = TopicLayout(), handle_batch: BatchHandler | None = None,
        relay: bool = True, relay_lease_s: float = 10.0, relay_poll_s: float = 0.5,
    ) -> None:
        self.kafka = kafka
        self.engine = engine
        self.source = source
        self.group_id = group_id
        self.consume = consume
        self.produce = produce
        self.handle = handle
        self.handle_batch = handle_batch
        self.layout = layout
        self.with_relay = relay
        self.relay_lease_s = relay_lease_s
        self.relay_poll_s = relay_poll_s
        self.relay_holder = uuid.uuid4()  # each restarted relay takes its predecessor's lease
        self.stop_event = asyncio.Event()
        self.relay: OutboxRelay | None = None
        self.on_lag: LagObserver | None = None  # set by services.common.metrics.observe_worker
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the loops in the background."""
        # a worker that consumes nothing (the identity service's) only relays its outbox
        self._tasks = [asyncio.create_task(self._forever(self._consume_once, "consumer"))
                       ] if self.consume else []
        if self.with_relay:
            self._tasks.append(asyncio.create_task(self._forever(self._relay_once, "relay")))

    def wake_relay(self) -> None:
        """Tell the relay new outbox rows were committed."""
        if self.relay is not None:
            self.relay.wake()

    async def stop(self) -> None:
        """Stop both loops."""
        self.stop_event.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 15)

    async def _forever(self, once: Callable[[], Awaitable[None]], name: str) -> None:
        while not self.stop_event.is_set():
            try:
                await once()
            except Exception as exc:
                log.warning("%s stopped on %s; restarting", name, type(exc).__name__)
                await asyncio.sleep(1)

    async def _producer(self) -> AIOKafkaProducer:
        # only what this service uses: its principal can see (DESCRIBE) no other topic
        await ensure_topics(self.kafka, [*self.consume, *(f"{t}.dlq" for t in self.consume),
                                         *self.produce], layout=self.layout)
        producer = make_producer(self.kafka)
        await producer.start()
        return producer

    async def _consume_once(self) -> None:
        producer = await self._producer()
        consumer = make_consumer(self.kafka, *self.consume, group_id=self.group_id)
        try:
            await consumer.start()
            await run_consumer(consumer, self._waking(self.handle),
                               dead_letters=DeadLetters(producer), stop=self.stop_event,
                               handle_batch=self._waking(self.handle_batch)
                               if self.handle_batch else None,
                               on_lag=self.on_lag)
        finally:
            await consumer.stop()
            await producer.stop()

    def _waking(self, handle: Handler) -> Handler:
        """`handle`, then a wake-up for the relay: a handler commits its own transaction, so
        whatever it staged in the outbox is owed to the topic now, not at the relay's next
        poll (up to `relay_poll_s` later on every hop)."""

        async def run(records: Any) -> None:
            await handle(records)
            self.wake_relay()

        return run

    async def _relay_once(self) -> None:
        producer = await self._producer()
        try:
            self.relay = OutboxRelay(engine=self.engine, producer=producer,
                                     kafka=self.kafka, source=self.source,
                                     lease_seconds=self.relay_lease_s,
                                     poll_interval_s=self.relay_poll_s,
                                     holder=self.relay_holder)
            await self.relay.run(self.stop_event)
        finally:
            await producer.stop()


@asynccontextmanager
async def in_background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `work` as a task while the context is open; cancel it on the way out."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
