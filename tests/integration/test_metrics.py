"""/metrics against the real database and broker: review queue, notification states, consumer
lag, dead-letter depth; and consumer log lines that carry event ids, never payload fields.

The session database is shared, so notifier figures are compared with a scrape taken before
this test's rows went in.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, update

from schemas import topics
from schemas.envelope import Envelope, wrap
from schemas.incidents import IncidentIn, IncidentReceived, IncidentWithdrawn
from services.common.db import make_engine, service_engine, standalone_uow
from services.common.kafka import (
    DeadLetters,
    dispatch_record,
    ensure_topics,
    make_consumer,
    make_producer,
    run_consumer,
)
from services.common.logs import JsonFormatter
from services.common.metrics import ConsumerLag
from services.common.settings import TopicLayout
from services.matcher.main import build_app as build_matcher
from services.matcher.models import reviews
from services.notifier.main import build_app as build_notifier
from services.notifier.models import emails, notifications, webhook_deliveries
from services.notifier.settings import NotifierSettings
from tests.support.api import metrics_auth, running
from tests.support.directory import notifier_knows_la, notifier_knows_school
from tests.support.ids import next_la, next_tag, next_urn
from tests.support.incidents import incident_body
from tests.support.registry import seed

pytestmark = pytest.mark.integration
CHILD = {"given_name": "Quillon", "family_name": "Marchbank", "date_of_birth": "2016-03-02"}
# 08:50 in London (BST): past an 08:45 day start, before a 09:00 one
NOW = datetime(2026, 6, 15, 7, 50, tzinfo=UTC)


class Scrape:
    """One /metrics answer, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [s for f in text_string_to_metric_families(text) for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
        return sum(s.value for s in self.samples
                   if s.name == name and labels.items() <= s.labels.items())

    def series(self, name: str) -> list[dict[str, str]]:
        """The label sets `name` is reported with."""
        return [s.labels for s in self.samples if s.name == name]


async def scrape(client: httpx.AsyncClient) -> Scrape:
    resp = await client.get("/metrics", headers=metrics_auth())
    assert resp.status_code == 200, resp.text
    return Scrape(resp.text)


async def until(client: httpx.AsyncClient, ok: Callable[[Scrape], bool],
                timeout_s: float = 15) -> Scrape:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        got = await scrape(client)
        if ok(got) or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.3)


def unstarted(app: FastAPI) -> httpx.AsyncClient:
    """A client for the app without its lifespan: no consumer, no dispatcher running."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def received() -> bytes:
    incident_id = uuid.uuid4()
    event = IncidentReceived(incident_id=incident_id, received_at=NOW,
                             incident=IncidentIn.model_validate(incident_body()),
                             disclosure_fields=["occurred_at"])
    return wrap(event, correlation_id=incident_id).to_bytes()


async def add_review(settings: Any, la: str, *, age: timedelta, status: str = "open") -> Any:
    review_id, incident_id = uuid.uuid4(), uuid.uuid4()
    async with standalone_uow(settings, "matcher") as uow:
        await uow.conn.execute(insert(reviews).values(
            review_id=review_id, incident_id=incident_id, child_index=0, child_id=uuid.uuid4(),
            la_code=la, status=status, child=CHILD, incident={"summary": "test"},
            candidates=[], created_at=datetime.now(UTC) - age))
        await uow.commit()
    return review_id


async def test_matcher_reports_reviews_lag_before_and_after_consuming_and_dlq(settings) -> None:
    la = next_la()
    await seed(settings, las=[la], school_rows=[], pupil_rows=[])
    first = await add_review(settings, la, age=timedelta(hours=1))
    await add_review(settings, la, age=timedelta(minutes=10))
    await add_review(settings, la, age=timedelta(days=2), status="resolved")
    incidents = settings.topic(topics.INCIDENTS)
    await ensure_topics(settings.kafka(), [incidents, f"{incidents}.dlq"],
                        layout=settings.topic_layout())
    producer = make_producer(settings.kafka())
    await producer.start()
    for value in (received(), received(), received(), b"not an envelope"):
        await producer.send_and_wait(incidents, value, key=secrets.token_bytes(4))
    await producer.stop()
    app = build_matcher(settings)

    async with unstarted(app) as client:  # nothing consumed yet: the lag comes from the broker
        before = await scrape(client)
    assert before.value("daybreak_reviews_open", la_code=la) == 2
    assert 3590 < before.value("daybreak_reviews_oldest_open_age_seconds", la_code=la) < 3700
    assert before.value("daybreak_consumer_lag", topic=incidents) == 4
    assert before.value("daybreak_dlq_depth", topic=f"{incidents}.dlq") == 0

    async with running(app) as client:
        after = await until(client, lambda s: s.value(
            "daybreak_dlq_depth", topic=f"{incidents}.dlq") == 1 and s.value(
            "daybreak_consumer_lag", topic=incidents) == 0)
        assert after.value("daybreak_dlq_depth", topic=f"{incidents}.dlq") == 1
        assert after.value("daybreak_consumer_lag", topic=incidents) == 0
        assert {s["partition"] for s in after.series("daybreak_consumer_lag")} == {"0", "1"}
        assert after.value("daybreak_match_outcomes_total") >= 3
        async with standalone_uow(settings, "matcher") as uow:
            await uow.conn.execute(update(reviews).where(reviews.c.review_id == first)
                                   .values(status="resolved"))
            await uow.commit()
        resolved = await scrape(client)
    assert resolved.value("daybreak_reviews_open", la_code=la) == 1
    assert 590 < resolved.value("daybreak_reviews_oldest_open_age_seconds", la_code=la) < 700
    assert "Quillon" not in resolved.text and str(first) not in resolved.text


def notification(state: str, push_at: datetime, *, urn: str | None, la: str,
                 **values: Any) -> dict[str, Any]:
    incident_id = uuid.uuid4()
    return {"id": uuid.uuid4(), "incident_id": incident_id, "school_urn": urn, "la_code": la,
            "recipient_key": f"school:{urn}" if urn else f"la:{la}", "recipient_role": "dsl",
            # the facts a real notification holds (the dispatcher, serving every row in the
            # session's database, announces these rows too), and a child to look for in /metrics
            "state": state, "incident": {"incident_id": str(incident_id), "force_code": "WMP",
                                         "incident_type": "domestic_abuse", "summary": "test",
                                         "child": CHILD},
            "push_at": push_at, "created_at": push_at - timedelta(hours=9), "sent_at": None,
            "escalations_sent": 0, **values}


async def seed_notifications(settings: Any) -> list[dict[str, Any]]:
    """Scheduled, sent and escalated rows around NOW, and two dead deliveries."""
    la = next_la()
    early, late = next_urn(), next_urn()
    engine = service_engine(settings, "notifier", pool_size=1)
    try:
        await notifier_knows_la(engine, la)
        await notifier_knows_school(engine, early, la, name="Early", day_starts_at=time(8, 45))
        await notifier_knows_school(engine, late, la, name="Late", day_starts_at=time(9, 0))
    finally:
        await engine.dispose()
    seven_bst, last_week = NOW.replace(hour=6, minute=0), NOW - timedelta(days=3)
    rows = [
        notification("scheduled", seven_bst, urn=early, la=la),  # due, late (07:45 UTC)
        notification("scheduled", seven_bst, urn=late, la=la),  # due, deadline 08:00 UTC
        notification("scheduled", NOW - timedelta(minutes=10), urn=None, la=la),  # due
        notification("scheduled", NOW + timedelta(days=1), urn=early, la=la),
        notification("sent", last_week.replace(hour=6, minute=0), urn=early, la=la,
                     sent_at=last_week.replace(hour=7, minute=50)),  # sent late
        notification("sent", last_week.replace(hour=6, minute=0), urn=late, la=la,
                     sent_at=last_week.replace(hour=6, minute=1)),
        notification("escalated", last_week, urn=early, la=la, escalations_sent=2),
        notification("acknowledged", last_week, urn=late, la=la, escalations_sent=1),
    ]
    async with standalone_uow(settings, "notifier") as uow:
        await uow.conn.execute(insert(notifications), rows)
        await uow.conn.execute(insert(emails).values(
            id=uuid.uuid4(), kind="notice", to_addrs=[], subject_name="Early", count=1,
            status="dead", next_attempt_at=NOW, created_at=NOW))
        await uow.conn.execute(insert(webhook_deliveries).values(
            school_urn=early, body=b"{}", status="dead", next_attempt_at=NOW, created_at=NOW))
        await uow.commit()
    return rows


NOTIFIER_SERIES = [
    ("daybreak_notifications", {"state": "scheduled"}, 4),
    ("daybreak_notifications", {"state": "sent"}, 2),
    ("daybreak_notifications", {"state": "escalated"}, 1),
    ("daybreak_notifications", {"state": "acknowledged"}, 1),
    ("daybreak_notifications", {"state": "retracted"}, 0),
    ("daybreak_notifications_due", {}, 3),
    ("daybreak_notifications_late", {}, 1),
    ("daybreak_notifications_sent_late", {}, 1),
    ("daybreak_notification_escalations", {"to": "deputy_dsl"}, 2),
    ("daybreak_notification_escalations", {"to": "la"}, 1),
    ("daybreak_deliveries", {"channel": "email", "status": "dead"}, 1),
    ("daybreak_deliveries", {"channel": "webhook", "status": "dead"}, 1),
]


async def test_notifier_reports_states_due_late_escalations_and_keeps_values_without_db(
    settings,
) -> None:
    app = build_notifier(NotifierSettings(**settings.model_dump()))
    ctx = app.state.ctx
    ctx.clock = lambda: NOW
    try:
        async with unstarted(app) as client:
            before = await scrape(client)
            rows = await seed_notifications(settings)
            after = await scrape(client)
            for name, labels, delta in NOTIFIER_SERIES:
                assert after.value(name, **labels) - before.value(name, **labels) == delta, name
            assert len(after.series("daybreak_notifications")) == 7
            for leak in ("Quillon", str(rows[0]["id"]), rows[0]["school_urn"]):
                assert leak not in after.text

            engine, ctx.engine = ctx.engine, make_engine(
                "postgresql+asyncpg://nobody:x@127.0.0.1:9/none", pool_size=1)
            try:
                stale = await scrape(client)  # the database is away: last values, still 200
            finally:
                await ctx.engine.dispose()
                ctx.engine = engine
        for name, labels, _ in NOTIFIER_SERIES:
            assert stale.value(name, **labels) == after.value(name, **labels), name
        assert stale.value("daybreak_metrics_refresh_failures_total",
                           refresher="notifications") == 1
    finally:
        await ctx.engine.dispose()


async def test_loop_reports_lag_while_handling_and_logs_event_ids_only(settings, caplog) -> None:
    topic = settings.topic("lag.v1")
    await ensure_topics(settings.kafka(), [topic, f"{topic}.dlq"],
                        layout=TopicLayout(partitions=1))
    events = [wrap(IncidentWithdrawn(incident_id=uuid.uuid4(), force_code="WMP",
                                     withdrawn_at=NOW, reason=reason),
                   correlation_id=uuid.uuid4()) for reason in ("ok", "Quillon", "ok")]
    producer = make_producer(settings.kafka())
    await producer.start()
    for event in events:
        await producer.send_and_wait(topic, event.to_bytes(), key=b"k")
    gate = asyncio.Event()

    async def on_withdrawn(envelope: Envelope[IncidentWithdrawn], *, deps: object) -> None:
        await gate.wait()
        if envelope.payload.reason != "ok":
            raise ValueError(envelope.payload.reason)

    handle: Callable[[ConsumerRecord[bytes, bytes]], Any] = functools.partial(
        dispatch_record, handlers={"IncidentWithdrawn": on_withdrawn}, deps=None)
    registry = CollectorRegistry()
    lag = ConsumerLag(registry)
    consumer = make_consumer(settings.kafka(), topic, group_id=f"g-{next_tag()}")
    await consumer.start()
    caplog.set_level(logging.INFO, logger="services.common.kafka")
    stop = asyncio.Event()
    loop = asyncio.create_task(run_consumer(
        consumer, handle, dead_letters=DeadLetters(producer, max_attempts=2), stop=stop,
        retry_delay_s=0.01, on_lag=lag))

    async def lag_becomes(expected: float) -> float | None:
        for _ in range(100):
            got = registry.get_sample_value("daybreak_consumer_lag",
                                            {"topic": topic, "partition": "0"})
            if got == expected:
                break
            await asyncio.sleep(0.1)
        return got

    try:
        assert await lag_becomes(3) == 3  # fetched, none handled yet
        gate.set()
        assert await lag_becomes(0) == 0
    finally:
        gate.set()
        stop.set()
        await asyncio.wait_for(loop, 10)
        await consumer.stop()
        await producer.stop()

    failed = [r for r in caplog.records if r.name == "services.common.kafka"
              and r.levelno >= logging.WARNING]
    assert [r.getMessage().split(" ")[0] for r in failed] == ["handler", "handler", "message"]
    for record in failed:
        line = json.loads(JsonFormatter().format(record))
        assert line["event_id"] == str(events[1].event_id)
        assert line["correlation_id"] == str(events[1].correlation_id)
        assert line["event_type"] == "IncidentWithdrawn"
        assert "Quillon" not in json.dumps(line)
