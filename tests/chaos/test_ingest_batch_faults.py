"""Ingest's group commit under injected faults, in-process on the session's broker and
database (no restarts: those are test_chaos.py's and test_restarts.py's, on their own stack).

A batch that fails — the database in the middle of it, or the broker refusing its Kafka
transaction's commit — answers 503 to every request in it, keeps nothing in the database and
shows nothing to read_committed readers; each retry is then accepted once (202), and once only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaTimeoutError
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.settings import Settings
from services.ingest.main import build_app
from services.ingest.settings import IngestSettings
from tests.support.api import issuer_for, new_police_client, police_token, running
from tests.support.incidents import incident_body, incidents_on_topic

pytestmark = pytest.mark.integration
REPORTS = 12


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    # one batch at a time, closed once the reports posted together all joined it
    built = build_app(IngestSettings(**settings.model_dump(), ingest_batch_max=REPORTS,
                                     ingest_batch_linger_ms=1000, ingest_batch_in_flight=1),
                      issuer=issuer_for(settings))
    async with running(built) as client:
        yield client, built.state.ctx


async def post_all(client: httpx.AsyncClient, settings: Settings, bodies: list[dict[str, Any]]
                   ) -> list[httpx.Response]:
    client_id, secret = await new_police_client(settings, "WMP")
    auth = {"Authorization": f"Bearer {await police_token(client, client_id, secret)}"}
    return list(await asyncio.gather(*(client.post("/v1/incidents", json=body, headers=auth)
                                       for body in bodies)))


async def kept(engine: AsyncEngine, bodies: list[dict[str, Any]]) -> dict[str, int]:
    """How many rows of each of ingest's tables the reports left."""
    refs = [b["incident_reference"] for b in bodies]
    async with engine.connect() as conn:
        ids = (await conn.execute(text(
            "SELECT incident_id FROM ingest.incidents WHERE force_code = 'WMP' "
            "AND incident_reference = ANY(CAST(:refs AS varchar[]))"), {"refs": refs})
        ).scalars().all()
        counts = {"incidents": len(ids)}
        for table in ("incident_versions", "receipt_incidents"):
            counts[table] = (await conn.execute(text(
                f"SELECT count(*) FROM ingest.{table} "
                "WHERE incident_id IN (SELECT incident_id FROM ingest.incidents "
                "WHERE force_code = 'WMP' AND incident_reference = ANY(CAST(:refs AS varchar[])))"),
                {"refs": refs})).scalar_one()
    return counts


async def retried_once(client: httpx.AsyncClient, settings: Settings,
                       bodies: list[dict[str, Any]]) -> None:
    """Each retry is accepted, a second retry is an idempotent 200, and the topic holds each
    report exactly once."""
    again = await post_all(client, settings, bodies)
    assert [a.status_code for a in again] == [202] * len(bodies)
    twice = await post_all(client, settings, bodies)
    assert [a.status_code for a in twice] == [200] * len(bodies)
    events = await incidents_on_topic(settings, at_least=len(bodies))
    assert sorted(e["_key"] for e in events) == sorted(a.json()["incident_id"] for a in again)


async def test_a_database_error_mid_batch_is_503_for_all_and_keeps_nothing(
    app, settings, engine
) -> None:
    client, ctx = app
    failures: list[str] = []

    def fail_versions(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # after the incidents' INSERT, before the receipts and Kafka: the connection drops
        if "ingest.incident_versions" in statement and not failures:
            failures.append(statement)
            raise ConnectionResetError("injected: connection lost mid-batch")

    event.listen(ctx.engine.sync_engine, "before_cursor_execute", fail_versions)
    bodies = [incident_body() for _ in range(REPORTS)]
    try:
        answers = await post_all(client, settings, bodies)
    finally:
        event.remove(ctx.engine.sync_engine, "before_cursor_execute", fail_versions)
    assert len(failures) == 1  # one batch
    assert [a.status_code for a in answers] == [503] * REPORTS
    assert all(a.headers["content-type"].startswith("application/problem+json")
               for a in answers)
    assert await kept(engine, bodies) == {"incidents": 0, "incident_versions": 0,
                                          "receipt_incidents": 0}
    assert await incidents_on_topic(settings) == []
    await retried_once(client, settings, bodies)
    assert await kept(engine, bodies) == {"incidents": REPORTS, "incident_versions": REPORTS,
                                          "receipt_incidents": REPORTS}


async def test_a_kafka_commit_refused_is_503_for_all_and_nothing_is_visible_or_kept(
    app, settings, engine, monkeypatch
) -> None:
    client, ctx = app
    producer = await ctx.publisher.producer()
    refused: list[int] = []

    async def refuse() -> None:
        # every record of the batch was sent into the open transaction: only the commit fails
        refused.append(1)
        raise KafkaTimeoutError()

    monkeypatch.setattr(producer, "commit_transaction", refuse)
    bodies = [incident_body() for _ in range(REPORTS)]
    answers = await post_all(client, settings, bodies)
    assert refused == [1]  # one batch, one Kafka transaction
    assert [a.status_code for a in answers] == [503] * REPORTS
    assert await kept(engine, bodies) == {"incidents": 0, "incident_versions": 0,
                                          "receipt_incidents": 0}
    assert await incidents_on_topic(settings) == []  # sent, never committed: invisible
    # the publisher's next producer fences the old one: its transaction is aborted for good
    await retried_once(client, settings, bodies)
    assert await kept(engine, bodies) == {"incidents": REPORTS, "incident_versions": REPORTS,
                                          "receipt_incidents": REPORTS}
