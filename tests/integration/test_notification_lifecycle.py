"""The notifier tells each notification's life on notifications.v1 (real PostgreSQL and Kafka):
scheduled, pushed per channel, first viewed, escalated, retracted, and each child's outcome,
keyed by incident, once each however often its trigger is redelivered, with no child data."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from schemas import topics
from schemas.envelope import wrap
from schemas.incidents import Address, ChildReport, IncidentWithdrawn
from schemas.matching import (
    ChildMatched,
    ChildNeedsReview,
    ChildUnmatched,
    SchoolMatch,
    child_id_for,
)
from services.common.app import create_app
from services.common.kafka import ensure_topics, make_producer
from services.common.models import outbox
from services.common.outbox import OutboxRelay
from services.common.settings import TopicLayout
from services.notifier.announce import count_repeat_children
from services.notifier.api import router
from services.notifier.channels import HttpxWebhookPoster, SmtpMailer
from services.notifier.context import NotifierContext
from services.notifier.dispatch import Dispatcher
from services.notifier.handlers import (
    NotifierDeps,
    on_child_matched,
    on_child_unmatched,
    on_incident_withdrawn,
)
from services.notifier.models import notification_children, notifications
from services.notifier.outgoing import OUTBOX_SOURCE
from tests.support.clock import Clock
from tests.support.kafka import read_topic
from tests.support.notifier import MATCHED_AT, PUSH_AT, School, add_school, facts, handle
from tests.support.tokens import bearer, person
from tests.support.webhooks import LOCAL

pytestmark = pytest.mark.integration
SECRETS = (b"Zara", b"Tomi", b"Ola", b"Okafor", b"2015-01-09", b"2013-06-30", b"B15 2TT",
           b"Secret")


def reported(given: str, born: date = date(2015, 1, 9)) -> ChildReport:
    """A child of the report, with a home postcode that must never reach the topic."""
    return ChildReport(given_name=given, family_name="Okafor", date_of_birth=born,
                       address=Address(line1="1 Secret Road", postcode="B15 2TT"),
                       voice_of_child="Secret voice")


def matched(incident_id: uuid.UUID, school: School, given: str, index: int, *,
            decided_by: str = "engine") -> Any:
    """The matcher's ChildMatched for child `index` (its id minted as the matcher mints it)."""
    return wrap(ChildMatched(
        child_id=child_id_for(incident_id, index), child_index=index,
        incident=facts(incident_id), child=reported(given), decided_by=decided_by,
        schools=[SchoolMatch(urn=school.urn, la_code=school.la, score=30)],
        matched_at=MATCHED_AT))


@pytest.fixture
def clock() -> Clock:
    """Sunday evening, when the children are matched."""
    return Clock(MATCHED_AT)


@pytest.fixture
def deps(notifier_engine, clock, settings) -> NotifierDeps:
    """The handlers staging under this test's topics."""
    return NotifierDeps(engine=notifier_engine, clock=clock, topic_prefix=settings.topic_prefix,
                        child_key_secret=settings.child_key_secret.get_secret_value())


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The dispatcher's client to the school's webhook."""
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
async def api(settings, notifier_engine, clock, deps) -> AsyncIterator[httpx.AsyncClient]:
    """The notifications API in-process."""
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings, engine=notifier_engine, clock=clock, deps=deps,
        registry=CollectorRegistry()))
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        yield client


async def published(settings, engine, *, at_least: int, key: bytes | None = None) -> list[Any]:
    """Relay the notifier's outbox to this test's topics; notifications.v1 as read back once
    `at_least` records (keyed `key`, if given) are on it."""
    topic = settings.topic(topics.NOTIFICATIONS)
    await ensure_topics(settings.kafka(), [topic, settings.topic(topics.DISCLOSURES)],
                        layout=TopicLayout(partitions=2))
    producer = make_producer(settings.kafka())
    await producer.start()
    stop = asyncio.Event()
    relay = OutboxRelay(engine=engine, producer=producer, kafka=settings.kafka(),
                        source=settings.topic(OUTBOX_SOURCE), poll_interval_s=0.1)
    task = asyncio.create_task(relay.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            got = await read_topic(settings.kafka(), topic)
            if sum(key is None or r.key == key for r in got) >= at_least:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # anything beyond what was expected would show too
    finally:
        stop.set()
        await task
        await producer.stop()
    records = await read_topic(settings.kafka(), topic)
    # two partitions: the order within the incident's key is the order staged
    return sorted(records, key=lambda r: r.offset)


def told(record: Any, school: School) -> tuple[Any, ...]:
    """An event as (type, whose notification, what it says beyond the ids)."""
    event = json.loads(record.value)
    body = event["payload"]
    who = "school" if body.get("school_urn") == school.urn else "la"
    detail = {k: body[k] for k in ("channel", "stage", "reason", "viewer_role", "outcome",
                                   "child_indexes", "decided_by") if body.get(k) not in (None, [])}
    return event["type"], None if event["type"] == "ChildOutcome" else who, detail


async def test_a_notifications_life_is_told_once_per_step_without_child_data(
    settings, notifier_engine, deps, clock, api, smtp, receiver, http
) -> None:
    inbox, port = smtp
    school = await add_school(notifier_engine, webhook_url=receiver.url)
    incident_id = uuid.uuid4()
    review_id = uuid.uuid4()
    first = matched(incident_id, school, "Zara", 0)
    queued = wrap(ChildNeedsReview(
        child_id=child_id_for(incident_id, 2), child_index=2, incident_id=incident_id,
        review_id=review_id, la_code=school.la, candidates=2, queued_at=MATCHED_AT,
        force_code="WMP"))
    for envelope in (first, first, wrap(ChildUnmatched(
            child_id=child_id_for(incident_id, 1), child_index=1, incident=facts(incident_id),
            child=reported("Ola", date(2013, 6, 30)), la_code=school.la, reason="not_on_roll",
            decided_by="engine", decided_at=MATCHED_AT)), queued, queued):
        await handle(envelope, deps=deps)
    resolved = matched(incident_id, school, "Tomi", 2, decided_by="review")
    await on_child_matched(resolved, deps=deps)
    await on_child_matched(resolved, deps=deps)

    sender = Dispatcher(engine=notifier_engine, clock=clock, portal_base_url="https://p.test",
                        mailer=SmtpMailer(host="127.0.0.1", port=port, sender="db@test"),
                        webhooks=HttpxWebhookPoster(http, egress=LOCAL),
                        topic_prefix=settings.topic_prefix)
    clock.now = PUSH_AT
    await sender.run_once()
    await sender.run_once()
    assert inbox.to(school.dsl) and receiver.verified
    dsl = bearer(person("dsl", schools=[school.urn]))
    ids = [i["id"] for i in (await api.get("/v1/notifications", headers=dsl)).json()["items"]]
    for _ in range(2):
        assert (await api.get(f"/v1/notifications/{ids[0]}", headers=dsl)).status_code == 200
    for hour, minute in ((9, 45), (10, 45)):  # the deputy, then the LA
        clock.now = PUSH_AT.replace(hour=hour, minute=minute)
        await sender.run_once()
    clock.now += timedelta(minutes=5)
    await on_incident_withdrawn(wrap(IncidentWithdrawn(
        incident_id=incident_id, force_code="WMP", withdrawn_at=clock.now, reason="error")),
        deps=deps)
    await sender.run_once()

    everything = await published(settings, notifier_engine, at_least=15,
                                 key=str(incident_id).encode())
    # the dispatcher serves the whole session database: other tests' due rows are announced
    # under this prefix too; every event is keyed by an incident id, and this one's are ours
    assert all(uuid.UUID(r.key.decode()) for r in everything)
    for record in everything:
        assert not [s for s in SECRETS if s in record.value or s in record.key]
    records = [r for r in everything if r.key == str(incident_id).encode()]
    steps = [told(r, school) for r in records]
    assert steps[:7] == [
        ("ChildOutcome", None, {"outcome": "matched", "decided_by": "engine"}),
        ("NotificationScheduled", "school", {"child_indexes": [0]}),
        ("ChildOutcome", None, {"outcome": "unmatched", "decided_by": "engine"}),
        ("NotificationScheduled", "la", {"child_indexes": [1]}),
        ("ChildOutcome", None, {"outcome": "review"}),
        ("ChildOutcome", None, {"outcome": "matched", "decided_by": "review"}),
        ("NotificationScheduled", "school", {"child_indexes": [2]}),
    ]
    pushes = sorted(steps[7:10], key=str)
    assert pushes == [("NotificationPushed", "la", {"channel": "email"}),
                      ("NotificationPushed", "school", {"channel": "email"}),
                      ("NotificationPushed", "school", {"channel": "webhook"})]
    assert steps[10:13] == [
        ("NotificationViewed", "school", {"viewer_role": "dsl"}),
        ("NotificationEscalated", "school", {"stage": "deputy"}),
        ("NotificationEscalated", "school", {"stage": "la"}),
    ]
    assert sorted(steps[13:], key=str) == [
        ("NotificationRetracted", "la", {"reason": "incident_withdrawn"}),
        ("NotificationRetracted", "school", {"reason": "incident_withdrawn"})]

    payloads = [json.loads(r.value)["payload"] for r in records]
    scheduled = [p for p in payloads if "push_at" in p]
    school_day = PUSH_AT.replace(hour=8, minute=45).isoformat().replace("+00:00", "Z")
    assert [(p["push_at"], p["deadline_at"]) for p in scheduled] == [
        (PUSH_AT.isoformat().replace("+00:00", "Z"), school_day),
        (PUSH_AT.isoformat().replace("+00:00", "Z"), None),
        (PUSH_AT.isoformat().replace("+00:00", "Z"), school_day)]
    assert scheduled[0]["notification_id"] == scheduled[2]["notification_id"]  # one per school
    outcomes = [p for p in payloads if "outcome" in p]
    assert [(p["child_index"], p["force_code"], p["review_id"]) for p in outcomes] == [
        (0, "WMP", None), (1, "WMP", None), (2, "WMP", str(review_id)),
        (2, "WMP", str(review_id))]
    assert outcomes[0]["school_urns"] == [school.urn] and outcomes[1]["la_code"] == school.la


async def test_repeat_children_counts_this_recipients_children_of_the_last_year(
    settings, notifier_engine, deps, clock
) -> None:
    school = await add_school(notifier_engine)
    before, again = uuid.uuid4(), uuid.uuid4()
    await on_child_matched(matched(before, school, "Zara", 0), deps=deps)
    await on_child_unmatched(wrap(ChildUnmatched(
        child_id=child_id_for(before, 1), child_index=1, incident=facts(before),
        child=reported("Ola"), la_code=school.la, reason="not_on_roll", decided_by="engine",
        decided_at=MATCHED_AT)), deps=deps)
    clock.now = MATCHED_AT + timedelta(days=300)
    await on_child_matched(matched(again, school, "Zara", 0), deps=deps)  # told before: 1
    await on_child_matched(matched(again, school, "Tomi", 1), deps=deps)  # new: 0
    await on_child_matched(matched(again, school, "Ola", 2), deps=deps)  # the LA had her: 0
    n, c = notifications.c, notification_children.c
    async with notifier_engine.connect() as conn:
        values = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == settings.topic(OUTBOX_SOURCE),
            outbox.c.topic == settings.topic(topics.NOTIFICATIONS)).order_by(outbox.c.id)
        )).scalars().all()
        keys = list((await conn.execute(select(c.child_key).join(
            notifications, n.id == c.notification_id).where(n.incident_id == again))).scalars())

        async def repeats(school_urn: str | None, days: int) -> int:
            return await count_repeat_children(
                conn, child_keys=keys, school_urn=school_urn, la_code=school.la,
                incident_id=again, at=MATCHED_AT + timedelta(days=days))

        assert await repeats(school.urn, 300) == 1  # Zara
        assert await repeats(None, 300) == 1  # Ola, at the LA's own desk
        assert await repeats(school.urn, 366) == 0  # more than a year ago
        assert await repeats(school.urn, 0) == 0  # nothing before
    events = [json.loads(v)["payload"] for v in values]
    assert [(e["child_indexes"], e["repeat_children"]) for e in events
            if "repeat_children" in e and e["incident_id"] == str(again)] == [
        ([0], 1), ([1], 0), ([2], 0)]


async def test_a_child_reported_absent_is_scheduled_for_the_la_by_its_place_in_the_report(
    settings, notifier_engine, deps, clock, api
) -> None:
    school = await add_school(notifier_engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, school, "Zara", 3), deps=deps)
    dsl = bearer(person("dsl", schools=[school.urn]))
    [item] = (await api.get("/v1/notifications", headers=dsl)).json()["items"]
    clock.now = PUSH_AT
    ack = await api.post(f"/v1/notifications/{item['id']}/acknowledge",
                         json={"attended": False}, headers=dsl)
    assert ack.status_code == 200
    async with notifier_engine.connect() as conn:
        values = (await conn.execute(select(outbox.c.value).where(
            outbox.c.topic == settings.topic(topics.NOTIFICATIONS)).order_by(outbox.c.id)
        )).scalars().all()
    events = [json.loads(v)["payload"] for v in values]
    assert [(e["recipient_role"], e["child_indexes"], e["deadline_at"]) for e in events
            if e["incident_id"] == str(incident_id) and "recipient_role" in e] == [
        ("school", [3], PUSH_AT.replace(hour=8, minute=45).isoformat().replace("+00:00", "Z")),
        ("la", [3], None)]
