"""One relay per source by a lease row, with nothing kept in a session between transactions:
what PgBouncer's transaction mode needs (docs/deployment.md)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.incidents import IncidentWithdrawn
from services.common.db import UnitOfWork, service_engine
from services.common.kafka import ensure_topics, make_producer
from services.common.lease import Lease, LeaseLost
from services.common.models import outbox, outbox_leases
from services.common.outbox import OutboxRelay, add_all_to_outbox
from services.common.settings import Settings, TopicLayout
from tests.support.ids import next_tag
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


async def stage(engine: AsyncEngine, topic: str, source: str, n: int) -> None:
    withdrawn = [IncidentWithdrawn(incident_id=uuid.uuid4(), force_code="WMP",
                                   withdrawn_at="2026-11-22T08:00:00Z", reason="test")
                 for _ in range(n)]
    async with UnitOfWork(engine) as uow:
        await add_all_to_outbox(uow.conn, source=source, staged=[
            (topic, str(event.incident_id), wrap(event)) for event in withdrawn])
        await uow.commit()


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def published_at(engine: AsyncEngine, source: str) -> dict[int, object]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.id, outbox.c.published_at).where(
            outbox.c.source == source))).all()
    return {r.id: r.published_at for r in rows}


async def lease_holder(engine: AsyncEngine, source: str) -> uuid.UUID | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(outbox_leases.c.holder).where(
            outbox_leases.c.source == source))).scalar()


class Counted:
    """An `after_send` hook counting the batches one relay sent."""

    def __init__(self) -> None:
        self.sends = 0

    async def __call__(self) -> None:
        self.sends += 1


@pytest.fixture
async def relay_world(settings: Settings):  # type: ignore[no-untyped-def]
    topic = settings.topic("lease.v1")
    await ensure_topics(settings.kafka(), [topic], layout=TopicLayout(partitions=2))
    engine = service_engine(settings, "matcher", pool_size=4)
    producer = make_producer(settings.kafka())
    await producer.start()
    try:
        yield topic, f"test-{next_tag()}", engine, producer
    finally:
        await producer.stop()
        await engine.dispose()


async def test_of_two_relays_on_one_source_only_the_lease_holder_publishes(
        settings, relay_world) -> None:
    topic, source, engine, producer = relay_world
    await stage(engine, topic, source, 300)
    hooks = [Counted(), Counted()]
    relays = [OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                          source=source, batch_size=50, poll_interval_s=0.05,
                          lease_seconds=3, after_send=hook) for hook in hooks]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    try:
        assert len(await read_topic(settings.kafka(), topic, at_least=300)) >= 300
        await asyncio.sleep(0.5)
        leader = next(r for r, h in zip(relays, hooks, strict=True) if h.sends)
        assert sorted(h.sends for h in hooks) == [0, 6]  # all six batches, by one relay
        assert await lease_holder(engine, source) == leader.lease.holder
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert len(await read_topic(settings.kafka(), topic)) == 300
    assert all((await published_at(engine, source)).values())


async def test_a_relay_paused_past_its_lease_is_fenced_once_another_took_over(
        settings, relay_world) -> None:
    topic, source, engine, producer = relay_world
    await stage(engine, topic, source, 120)
    paused, resume = asyncio.Event(), asyncio.Event()

    async def pause_after_first_send() -> None:  # sent, not marked, and renewing nothing
        if not paused.is_set():
            paused.set()
            await resume.wait()

    first = OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                        source=source, batch_size=50, poll_interval_s=0.05, lease_seconds=2,
                        after_send=pause_after_first_send)
    second = OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                         source=source, batch_size=50, poll_interval_s=0.05, lease_seconds=2)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    first_task = asyncio.create_task(first.run(stop_first))
    second_task: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(paused.wait(), 20)
        held = first.lease.epoch
        assert held is not None
        second_task = asyncio.create_task(second.run(stop_second))

        async def all_marked() -> bool:
            return all((await published_at(engine, source)).values())

        # the second takes over once the lease expires, recovers the first's batch from the
        # topic (so it is not sent again) and publishes the rest
        await eventually(all_marked)
        assert second.lease.epoch == held + 1
        marked = await published_at(engine, source)

        resume.set()  # the first wakes up and tries to mark its batch

        async def fenced() -> bool:
            return first.leases_lost == 1

        await eventually(fenced)
        assert await published_at(engine, source) == marked  # it marked nothing
        assert await lease_holder(engine, source) == second.lease.holder
        assert first.lease.epoch is None
    finally:
        resume.set()
        stop_first.set()
        stop_second.set()
        await first_task
        if second_task is not None:
            await second_task
    records = await read_topic(settings.kafka(), topic)
    assert len(records) == 120
    assert len({r.value for r in records}) == 120


async def test_a_relay_stopping_releases_its_lease_for_the_next_at_once(
        settings, relay_world) -> None:
    topic, source, engine, producer = relay_world
    await stage(engine, topic, source, 10)
    stop = asyncio.Event()
    relay = OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                        source=source, poll_interval_s=0.05, lease_seconds=600)
    task = asyncio.create_task(relay.run(stop))
    await read_topic(settings.kafka(), topic, at_least=10)
    stop.set()
    await task

    await stage(engine, topic, source, 10)
    stop = asyncio.Event()
    successor = OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                            source=source, poll_interval_s=0.05, lease_seconds=600)
    task = asyncio.create_task(successor.run(stop))
    try:
        # far sooner than the 600 s the first relay's lease would have lasted
        assert len(await read_topic(settings.kafka(), topic, at_least=20, timeout_s=15)) == 20
        assert successor.lease.epoch == 2
    finally:
        stop.set()
        await task


async def test_a_restarted_relay_takes_back_its_predecessors_unreleased_lease_at_once(
        settings, relay_world) -> None:
    topic, source, engine, producer = relay_world
    await stage(engine, topic, source, 10)
    holder = uuid.uuid4()
    crashed = Lease(source=source, seconds=600, holder=holder)
    assert await crashed.acquire(engine)  # and never released: its database went away
    stranger = Lease(source=source, seconds=600)
    assert not await stranger.acquire(engine)
    stop = asyncio.Event()
    restarted = OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                            source=source, poll_interval_s=0.05, lease_seconds=600,
                            holder=holder)
    task = asyncio.create_task(restarted.run(stop))
    try:
        assert len(await read_topic(settings.kafka(), topic, at_least=10, timeout_s=15)) == 10
        assert restarted.lease.epoch == 2
    finally:
        stop.set()
        await task
    with pytest.raises(LeaseLost):  # the predecessor, were it alive, is fenced
        await crashed.renew(engine)


async def test_a_running_relay_keeps_no_transaction_open_and_no_advisory_lock(
        settings, relay_world, engine) -> None:
    topic, source, relay_engine, producer = relay_world
    role = make_url(settings.matcher_database_url).username
    await stage(relay_engine, topic, source, 400)
    stop = asyncio.Event()
    relay = OutboxRelay(engine=relay_engine, producer=producer, kafka=settings.kafka(),
                        source=source, batch_size=20, poll_interval_s=0.05,
                        lease_seconds=1.5)  # renewed every half second while it is idle
    task = asyncio.create_task(relay.run(stop))
    seen_connections = 0
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + 3
        while loop.time() < end:  # publishing at first, then idle
            async with engine.connect() as conn:
                mine = "a.datname = current_database() AND a.usename = :role"
                seen_connections = max(seen_connections, (await conn.execute(text(
                    f"SELECT count(*) FROM pg_stat_activity a WHERE {mine}"),
                    {"role": role})).scalar_one())
                long_open = (await conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity a WHERE "
                    f"{mine} AND a.state LIKE 'idle in transaction%' "
                    "AND a.xact_start < clock_timestamp() - interval '1 second'"),
                    {"role": role})).scalar_one()
                advisory = (await conn.execute(text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    f"WHERE l.locktype = 'advisory' AND {mine}"), {"role": role})).scalar_one()
            assert (long_open, advisory) == (0, 0)
            await asyncio.sleep(0.1)
        assert relay.lease.epoch is not None
    finally:
        stop.set()
        await task
    assert seen_connections > 0
    async with relay_engine.connect() as conn:
        left = (await conn.execute(select(func.count()).where(
            outbox.c.source == source, outbox.c.published_at.is_(None)))).scalar_one()
    assert left == 0


async def prepared_left_after_commit(settings: Settings, *, statement_cache: bool) -> int:
    """How many statements a service's connection still has prepared once the transaction
    that ran them committed."""
    engine = service_engine(settings.model_copy(update={"db_statement_cache": statement_cache}),
                            "matcher", pool_size=1)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 42 AS lease_probe"))).all() == [(42,)]
            await conn.commit()
            return int((await conn.execute(text(
                "SELECT count(*) FROM pg_prepared_statements "
                "WHERE statement LIKE 'SELECT 42 AS lease_probe%'"))).scalar_one())
    finally:
        await engine.dispose()


async def test_without_the_statement_cache_no_statement_outlives_its_transaction(
        settings, monkeypatch) -> None:
    assert await prepared_left_after_commit(settings, statement_cache=True) == 1
    assert await prepared_left_after_commit(settings, statement_cache=False) == 0
    monkeypatch.setenv("DAYBREAK_DB_STATEMENT_CACHE", "false")
    assert Settings(env="development").db_statement_cache is False
