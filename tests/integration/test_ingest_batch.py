"""Ingest's group commit against the real broker and database: the reports waiting at one
moment share one transaction with a constant number of statements, and each still gets the
answer it would get alone; every producer compresses as DAYBREAK_KAFKA_COMPRESSION says."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.kafka import KafkaPublisher, Message
from services.common.settings import KafkaConnection, Settings, TopicLayout
from services.ingest.main import build_app
from services.ingest.settings import IngestSettings
from tests.support.api import issuer_for, new_police_client, police_token, running
from tests.support.ids import next_force
from tests.support.incidents import incident_body, incidents_on_topic, register_force
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


def batching(settings: Settings, size: int) -> IngestSettings:
    """One batch at a time, closed once `size` reports joined it (or after a second)."""
    return IngestSettings(**settings.model_dump(), ingest_batch_max=size,
                          ingest_batch_linger_ms=1000, ingest_batch_in_flight=1)


@asynccontextmanager
async def app(settings: Settings, size: int) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    built = build_app(batching(settings, size), issuer=issuer_for(settings))
    async with running(built) as client:
        yield client, built.state.ctx


async def headers_for(client: httpx.AsyncClient, settings: Settings, force: str
                      ) -> dict[str, str]:
    client_id, secret = await new_police_client(settings, force)
    return {"Authorization": f"Bearer {await police_token(client, client_id, secret)}"}


class Statements:
    """The statements of each transaction the app's engine runs (BEGIN and COMMIT are not
    statements), so that a batch's are counted alone: the app's background work (the receipts
    consumer, the webhook deliverer's polls) runs on the same engine whenever it likes, and
    counting every statement made this test fail when a poll fell inside the window."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.transactions: list[list[str]] = []
        self.engine = engine.sync_engine
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine, "before_cursor_execute", self._count)

    def _begin(self, conn: Any) -> None:
        conn.info["counted"] = statements = []
        self.transactions.append(statements)

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("counted", []).append(statement)

    def batches(self) -> list[int]:
        """How many statements each transaction that stored incidents ran."""
        found = [len(tx) for tx in self.transactions
                 if any("INSERT INTO ingest.incidents " in s for s in tx)]
        self.transactions.clear()
        return found

    def close(self) -> None:
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "before_cursor_execute", self._count)


async def test_a_batch_costs_the_same_statements_for_one_report_as_for_twenty(
    settings, engine
) -> None:
    async with app(settings, 20) as (client, ctx):
        wmp = await headers_for(client, settings, "WMP")
        counted = Statements(ctx.engine)
        try:
            one = await client.post("/v1/incidents", json=incident_body(), headers=wmp)
            [alone] = counted.batches()
            twenty = await asyncio.gather(*(client.post("/v1/incidents", json=incident_body(),
                                                        headers=wmp) for _ in range(20)))
            [together] = counted.batches()
        finally:
            counted.close()
    assert one.status_code == 202 and [r.status_code for r in twenty] == [202] * 20
    assert together == alone, (alone, together)  # the per-request code took 5 per report
    sizes = ctx.registry.get_sample_value  # what /metrics shows of the batches' sizes
    assert (sizes("daybreak_ingest_batch_reports_count"),
            sizes("daybreak_ingest_batch_reports_sum"),
            sizes("daybreak_ingest_batch_reports_bucket", {"le": "1.0"})) == (2, 21, 1)
    events = await incidents_on_topic(settings, at_least=21)
    assert sorted(e["_key"] for e in events) == sorted(
        r.json()["incident_id"] for r in [one, *twenty])
    # every report's receipt change numbered once in the force's sequence, without gaps
    async with engine.connect() as conn:
        seqs = (await conn.execute(text(
            "SELECT change_seq FROM ingest.receipt_incidents WHERE force_code = 'WMP' "
            "AND incident_id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": [e["_key"] for e in events]})).scalars().all()
    assert len(seqs) == 21 and max(seqs) - min(seqs) == 20


async def test_each_request_of_a_batch_gets_its_own_answer(settings) -> None:
    unready = next_force("NR")
    kept, new, twice = incident_body(), incident_body(), incident_body()
    bodies = [new, kept, {**kept, "summary": "Another report."}, twice, twice,
              {**twice, "summary": "Not the same."}, incident_body(force=unready)]
    async with app(settings, len(bodies)) as (client, _):
        wmp = await headers_for(client, settings, "WMP")
        other = await headers_for(client, settings, unready)
        await register_force(settings, unready, la_code=None)  # made ready by the line above
        assert (await client.post("/v1/incidents", json=kept, headers=wmp)).status_code == 202
        answers = await asyncio.gather(*(
            client.post("/v1/incidents", json=body, headers=other if body is bodies[-1] else wmp)
            for body in bodies))
    assert [a.status_code for a in answers] == [202, 200, 409, 202, 200, 409, 409]
    assert answers[4].json()["incident_id"] == answers[3].json()["incident_id"]
    assert answers[6].json()["title"] == "Force not ready"
    assert answers[2].json()["title"] == "Conflict"
    events = await incidents_on_topic(settings, at_least=3)
    assert sorted(e["_key"] for e in events) == sorted(
        a.json()["incident_id"] for a in (answers[0], answers[1], answers[3]))


async def test_publish_many_is_one_transaction_whatever_the_publishers_batch_size(
    kafka: KafkaConnection, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}many"
    publisher = KafkaPublisher(kafka, topics=[topic], layout=TopicLayout(partitions=1),
                               max_batch=3)
    try:
        await publisher.publish_many([Message(topic, str(k), b"v") for k in range(5)])
        records = await read_topic(kafka, topic, at_least=5)
    finally:
        await publisher.stop()
    # one transaction: offsets 0-4 and its commit marker; split in two, the last would be 5
    assert [r.offset for r in records] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("codec", ["lz4", "zstd", "gzip"])
async def test_every_producer_compresses_as_the_setting_says(
    settings: Settings, topic_prefix: str, codec: str
) -> None:
    compressed = Settings(**settings.model_dump() | {"kafka_compression": codec})
    assert compressed.kafka().producer_options()["compression_type"] == codec
    assert settings.kafka().producer_options()["compression_type"] is None  # none by default
    topic = f"{topic_prefix}{codec}"
    publisher = KafkaPublisher(compressed.kafka(), topics=[topic],
                               layout=TopicLayout(partitions=1))
    value = json.dumps({"summary": "Verbal argument between adults. " * 40}).encode()
    try:
        await publisher.publish_many([Message(topic, str(k), value) for k in range(20)])
        producer = await publisher.producer()
        assert producer._compression_type == codec  # what the record batches are written with
        records = await read_topic(compressed.kafka(), topic, at_least=20)
    finally:
        await publisher.stop()
    assert [r.value for r in records] == [value] * 20


class LockProbe:
    """The batch's publisher, first trying (without waiting) to lock the force's receipt
    counter from another connection: the row a receipts consumer also takes."""

    def __init__(self, inner: Any, engine: AsyncEngine, force: str) -> None:
        self.inner, self.engine, self.force = inner, engine, force
        self.free: list[bool] = []

    async def publish_many(self, messages: Any) -> None:
        async with self.engine.connect() as conn:
            try:
                await conn.execute(text("SELECT last_seq FROM ingest.receipt_forces "
                                        "WHERE force_code = :f FOR UPDATE NOWAIT"),
                                   {"f": self.force})
                self.free.append(True)
            except DBAPIError:
                self.free.append(False)
            await conn.rollback()
        await self.inner.publish_many(messages)


async def test_a_batch_holds_the_forces_receipt_counter_only_after_kafka(
    settings, engine
) -> None:
    """A batch numbers its receipts' changes last, so the force's counter is not locked while
    the Kafka transaction runs (the receipts consumer waited on it behind every batch)."""
    async with app(settings, 1) as (client, ctx):
        wmp = await headers_for(client, settings, "WMP")
        first = await client.post("/v1/incidents", json=incident_body(), headers=wmp)
        probe = LockProbe(ctx.batcher.publisher, engine, "WMP")
        ctx.batcher.publisher = probe
        second = await client.post("/v1/incidents", json=incident_body(), headers=wmp)
    assert (first.status_code, second.status_code) == (202, 202)
    assert probe.free == [True]
