"""Load for the whole-pipeline benchmark: police clients posting closed-loop (as fast as
answers come) or open-loop (on a steady clock), and a reader of `notifications.v1` that
notes when each incident's `NotificationScheduled` became visible.

Open loop: request i starts at t0 + i/rate whether or not earlier ones have been answered,
and its latency runs from that scheduled start, so a stalled server cannot hide its stall by
slowing the load down (coordinated omission). Every time here is the bench's own
`time.perf_counter()`, so accepted (the 202 read) and scheduled (the event read) are on one
clock.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer

from bench.ingest import RawHttp
from services.common.kafka import partitions_of
from services.common.settings import KafkaConnection

Refresh = Callable[[], Awaitable[str]]
RETRY_AFTER_S = 0.2  # the same body again: ingest is idempotent
# a kept-alive connection idle this long is not reused (httpcore's keepalive_expiry): the
# server's own timeout (uvicorn's 5 s) would race the next request and drop it
KEEPALIVE_EXPIRY_S = 4.0
SCHEDULED = b'"type":"NotificationScheduled"'


@dataclass
class Load:
    """What the police clients saw: HTTP latencies, codes, when each incident was accepted."""

    latencies: list[float] = field(default_factory=list)
    codes: dict[int, int] = field(default_factory=dict)
    retries: int = 0
    started: float = 0.0
    finished: float = 0.0
    accepted_at: dict[uuid.UUID, float] = field(default_factory=dict)
    late_s: float = 0.0  # open loop: how far behind its clock the generator itself fell


class Poster:
    """Posts one incident over a keep-alive connection until ingest accepts it, retrying a
    refusal (503, a dropped connection) with the same body, as a real police client would."""

    def __init__(self, url: str, token: str, refresh: Refresh, load: Load) -> None:
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.refresh = refresh
        self.load = load

    def connect(self) -> RawHttp:
        """A new connection (opened on its first request)."""
        return RawHttp(self.host, self.port)

    async def post(self, conn: RawHttp, incident_id: uuid.UUID, body: bytes, *,
                   since: float | None = None) -> RawHttp:
        """Post until accepted; latency from `since` (open loop: the scheduled start) or from
        the first attempt. Returns the connection to reuse."""
        started = time.perf_counter() if since is None else since
        while True:
            try:
                status = await conn.request("POST", "/v1/incidents", self.headers, body)
            except (OSError, asyncio.IncompleteReadError):
                status = 599
                conn = self.connect()
            self.load.codes[status] = self.load.codes.get(status, 0) + 1
            if status in (200, 202):
                now = time.perf_counter()
                self.load.latencies.append(now - started)
                self.load.accepted_at[incident_id] = now
                return conn
            if status == 401:
                self.headers["Authorization"] = f"Bearer {await self.refresh()}"
            elif status not in (503, 599):
                raise RuntimeError(f"ingest refused a benchmark incident: {status}")
            self.load.retries += 1
            await asyncio.sleep(RETRY_AFTER_S)


async def post_closed_loop(poster: Poster, items: Iterator[tuple[uuid.UUID, bytes]],
                           clients: int) -> Load:
    """`clients` keep-alive connections, each posting its next body once the last is in."""
    load = poster.load
    load.started = time.perf_counter()

    async def client() -> None:
        conn = poster.connect()
        for incident_id, body in items:
            conn = await poster.post(conn, incident_id, body)

    await asyncio.gather(*(client() for _ in range(clients)))
    load.finished = time.perf_counter()
    return load


async def post_open_loop(poster: Poster, items: Sequence[tuple[uuid.UUID, bytes]],
                         rate: float, *, max_connections: int) -> Load:
    """Start request i at t0 + i/rate on an idle connection (a new one if none is idle, up to
    `max_connections`; beyond that a request waits, its wait counted in its latency)."""
    load = poster.load
    idle = [(poster.connect(), math.inf) for _ in range(min(max_connections, 64))]
    slots = asyncio.Semaphore(max_connections)
    load.started = t0 = time.perf_counter() + 0.05

    async def one(due: float, incident_id: uuid.UUID, body: bytes) -> None:
        async with slots:
            conn, used = idle.pop() if idle else (poster.connect(), math.inf)
            if time.perf_counter() - used > KEEPALIVE_EXPIRY_S:
                conn.close()  # the server may close it under us (uvicorn: after 5 s idle)
                conn = poster.connect()
            conn = await poster.post(conn, incident_id, body, since=due)
            idle.append((conn, time.perf_counter()))

    tasks = []
    for i, (incident_id, body) in enumerate(items):
        due = t0 + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        load.late_s = max(load.late_s, -wait)
        tasks.append(asyncio.create_task(one(due, incident_id, body)))
    await asyncio.gather(*tasks)
    load.finished = time.perf_counter()
    return load


class ScheduledWatch:
    """Reads `notifications.v1` from its start as the admin principal (no consumer group),
    `read_committed`, and notes when each incident's `NotificationScheduled` events arrive.

    An event is on the topic only once the notifier's transaction committed and its outbox
    relay published it: what a police receipt or the partnership's figures can see. So this
    is an upper bound on "scheduled" (it includes the relay and this reader's poll), where
    the row's `created_at` is a lower bound (stamped before the transaction commits)."""

    def __init__(self, kafka: KafkaConnection, topic: str) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False,
                                         isolation_level="read_committed",
                                         fetch_max_wait_ms=50)
        self.seen: dict[uuid.UUID, list[float]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Assign every partition from its beginning and read in the background."""
        await self.consumer.start()
        tps = await partitions_of(self.consumer, [self.topic])
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    if record.key is not None and SCHEDULED in (record.value or b""):
                        self.seen.setdefault(uuid.UUID(record.key.decode()), []).append(now)

    async def caught_up(self, timeout_s: float = 60) -> None:
        """Return once everything committed on the topic by now has been read."""
        tps = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(tps)
        deadline = time.perf_counter() + timeout_s
        while [tp for tp in tps if await self.consumer.position(tp) < ends[tp]]:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{self.topic} not read to its end")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
        await self.consumer.stop()

    def latencies(self, accepted_at: dict[uuid.UUID, float]) -> list[float]:
        """Per incident with a notification: its last child's NotificationScheduled read,
        less the 202 read (children sent to review wait for a person and are not in it)."""
        return sorted(max(self.seen[i]) - at for i, at in accepted_at.items() if i in self.seen)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    return ordered[max(0, min(len(ordered), math.ceil(fraction * len(ordered))) - 1)]
