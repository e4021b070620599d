"""Prometheus gauges brought up to date when scraped: consumer lag, dead-letter depth, and
each service's own table counts (registered as refreshers). Labels hold codes, states and
topic names only: never child data, never ids."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import Counter as CounterOf
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import IllegalStateError
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.context import AppContext, Refresher
from services.common.doctor import ReadinessProblem
from services.common.kafka import partitions_of
from services.common.problems import Problem
from services.common.settings import KafkaConnection

if TYPE_CHECKING:
    from services.common.runner import Worker

log = logging.getLogger(__name__)
REFRESH_TIMEOUT_S = 2.0
POSITION_WAIT_S = 0.5  # the consume loop's lag report waits no longer for a position


def add_refresher(ctx: AppContext, name: str, refresh: Refresher) -> None:
    """Run `refresh` before each scrape of /metrics (it sets gauges on ctx.registry)."""
    if ctx.refresh_failures is None:
        ctx.refresh_failures = Counter(
            "daybreak_metrics_refresh_failures_total",
            "Scrapes whose gauges kept their last values because a query failed or timed out",
            ["refresher"], registry=ctx.registry)
    ctx.refreshers.append((name, refresh))


def require_metrics_token(authorization: str | None, token: SecretStr | None) -> None:
    """Refuse (401) a scrape that does not bear the metrics token; every scrape when none is
    set. Compared in constant time, as bytes."""
    scheme, _, given = (authorization or "").partition(" ")
    if token is None or scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.get_secret_value().encode()):
        raise Problem(401, "Unauthorized", "Metrics need DAYBREAK_METRICS_TOKEN as a bearer "
                      "token.", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


class CachedRefresh:
    """`refresh_gauges` at most once per `max_age_s`, one at a time: scrapes that arrive
    while a refresh runs wait for it and share its result, so a flood of scrapes costs one
    round of queries per interval, not one per scrape (nor a pool exhausted)."""

    def __init__(self, ctx: AppContext, *, max_age_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.max_age_s = max_age_s
        self.clock = clock
        self.refreshed_at: float | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self.refreshed_at is not None and \
            self.clock() - self.refreshed_at < self.max_age_s

    async def __call__(self) -> None:
        """Bring the gauges up to date unless they are fresh enough."""
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():  # refreshed by the scrape this one waited behind
                return
            await refresh_gauges(self.ctx)
            self.refreshed_at = self.clock()


async def refresh_gauges(ctx: AppContext, *, timeout_s: float = REFRESH_TIMEOUT_S) -> None:
    """Await every refresher, each for at most `timeout_s`; a failed one keeps its last values."""
    await asyncio.gather(*(_refresh(ctx, name, fn, timeout_s) for name, fn in ctx.refreshers))


async def _refresh(ctx: AppContext, name: str, refresh: Refresher, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(refresh(), timeout_s)
    except Exception as exc:
        log.warning("metrics refresh failed", extra={"refresher": name,
                                                      "exc_type": type(exc).__name__})
        if ctx.refresh_failures is not None:
            ctx.refresh_failures.labels(name).inc()


class ConsumerLag:
    """Records behind the read-committed end, per partition, as the consume loop sees them."""

    def __init__(self, registry: CollectorRegistry, *, stale_s: float = 10.0) -> None:
        self.gauge = Gauge(
            "daybreak_consumer_lag",
            "Records on the partition not yet handled by this service's consumer group "
            "(from the consume loop; from committed offsets when the loop is silent)",
            ["topic", "partition"], registry=registry)
        self.stale_s = stale_s
        self.reported_at: float | None = None
        self._series: set[TopicPartition] = set()

    async def __call__(
        self, consumer: AIOKafkaConsumer, first_unhandled: Mapping[TopicPartition, int]
    ) -> None:
        """From the loop after each poll: `first_unhandled` for partitions with records in hand."""
        lags: dict[TopicPartition, int] = {}
        try:
            for tp in consumer.assignment():
                end = consumer.last_stable_offset(tp)
                end = end if end is not None and end >= 0 else consumer.highwater(tp)
                if end is None:
                    continue  # not fetched yet in this assignment
                start = first_unhandled.get(tp)
                # every record fetched before this poll was handled, so position == committed;
                # position() waits (for ever, after a rebalance the coordinator has not
                # finished) when the partition has none yet: never hold the loop for a gauge
                start = start if start is not None else await asyncio.wait_for(
                    consumer.position(tp), POSITION_WAIT_S)
                lags[tp] = max(0, end - start)
        except (IllegalStateError, AssertionError, TimeoutError):
            return  # a rebalance took a partition meanwhile: the next poll reports again
        self.set(lags)
        self.reported_at = time.monotonic()

    def set(self, lags: Mapping[TopicPartition, int]) -> None:
        """Replace every series with `lags` (partitions no longer assigned disappear)."""
        for gone in self._series - lags.keys():
            self.gauge.remove(gone.topic, str(gone.partition))
        for tp, lag in lags.items():
            self.gauge.labels(tp.topic, str(tp.partition)).set(lag)
        self._series = set(lags)

    def is_stale(self) -> bool:
        """True when the loop has not reported lately (starting, restarting or stuck)."""
        return self.reported_at is None or time.monotonic() - self.reported_at > self.stale_s


class KafkaGauges:
    """Dead-letter depth of the consumed topics' `.dlq` twins, and lag from the group's
    committed offsets while the consume loop is silent; one short-lived client per scrape."""

    def __init__(self, registry: CollectorRegistry, *, kafka: KafkaConnection, group_id: str,
                 topics: Iterable[str], lag: ConsumerLag) -> None:
        self.kafka = kafka
        self.group_id = group_id
        self.topics = list(topics)
        self.lag = lag
        self.depth = Gauge(
            "daybreak_dlq_depth",
            "Messages parked on a dead-letter topic this service feeds (end minus start offset)",
            ["topic"], registry=registry)
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Read end offsets now, one refresh at a time."""
        async with self._lock:
            consumer = AIOKafkaConsumer(**self.kafka.client_options(),
                                        isolation_level="read_committed",
                                        request_timeout_ms=int(REFRESH_TIMEOUT_S * 1000))
            try:
                await consumer.start()
                await self._dead_letters(consumer)
                if self.lag.is_stale():
                    await self._committed_lag(consumer)
            finally:
                await consumer.stop()

    async def _dead_letters(self, consumer: AIOKafkaConsumer) -> None:
        for topic in (f"{t}.dlq" for t in self.topics):
            tps = await partitions_of(consumer, [topic])
            starts = await consumer.beginning_offsets(tps) if tps else {}
            ends = await consumer.end_offsets(tps) if tps else {}
            self.depth.labels(topic).set(sum(ends[tp] - starts[tp] for tp in tps))

    async def _committed_lag(self, consumer: AIOKafkaConsumer) -> None:
        tps = await partitions_of(consumer, self.topics)
        if not tps:
            return
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)  # auto_offset_reset is earliest
        admin = AIOKafkaAdminClient(**self.kafka.client_options(),
                                    request_timeout_ms=int(REFRESH_TIMEOUT_S * 1000))
        try:
            await admin.start()
            committed = await admin.list_consumer_group_offsets(self.group_id, partitions=tps)
        finally:
            await admin.close()
        done = {tp: committed[tp].offset if tp in committed and committed[tp].offset >= 0
                else starts[tp] for tp in tps}
        self.lag.set({tp: max(0, ends[tp] - done[tp]) for tp in tps})


def observe_worker(ctx: AppContext, worker: Worker) -> None:
    """Consumer lag and dead-letter depth for the worker's consumer group on /metrics."""
    lag = ConsumerLag(ctx.registry)
    worker.on_lag = lag
    gauges = KafkaGauges(ctx.registry, kafka=worker.kafka, group_id=worker.group_id,
                         topics=worker.consume, lag=lag)
    add_refresher(ctx, "kafka", gauges.refresh)


ProblemLister = Callable[[AsyncConnection, datetime], Awaitable[Sequence[ReadinessProblem]]]


def observe_readiness_problems(ctx: AppContext, codes: Sequence[str],
                               lister: ProblemLister) -> None:
    """`daybreak_readiness_problems{code}`: the configuration problems this service's
    `GET /v1/admin/readiness` lists, by code (every code listed, 0 when none), counted at
    scrape time. Codes are distinct across services, so `sum by (code)` adds them up."""
    gauge = Gauge("daybreak_readiness_problems",
                  "Configuration problems that would leave a reported child with nobody told, "
                  "by problem code", ["code"], registry=ctx.registry)

    async def refresh() -> None:
        async with ctx.engine.connect() as conn:
            found = CounterOf(p.code for p in await lister(conn, ctx.clock()))
        for code in codes:
            gauge.labels(code).set(found[code])

    add_refresher(ctx, "readiness", refresh)
