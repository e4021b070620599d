"""Content retention against the real database: each service erases its own old child data,
keeps the metadata, and announces the purge to the audit log in the same transaction.

The session database is shared, so every assertion is about rows this module creates.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.disclosures import ContentPurged
from schemas.envelope import parse_envelope, wrap
from schemas.incidents import ChildReport, IncidentIn, IncidentReceived
from schemas.registry import EVENT_TYPES
from services.audit.main import build_app as build_audit
from services.audit.models import audit_events
from services.audit.settings import AuditSettings, audit_settings
from services.cli import retention_run
from services.common.models import outbox
from services.common.retention import run_daily
from services.common.settings import Settings
from services.matcher import retention as matcher_retention
from services.matcher.models import reviews
from services.notifier import retention as notifier_retention
from services.notifier.actions import notification_actions
from services.notifier.main import build_app as build_notifier
from services.notifier.models import notification_children, notifications
from services.notifier.settings import NotifierSettings
from tests.support.api import running

CHILD = {"given_name": "Amelia", "family_name": "Hart", "date_of_birth": "2015-03-02",
         "voice_of_child": "said she was scared"}


@pytest.fixture
def config(settings: Settings) -> AuditSettings:
    return audit_settings(settings)


def incident(incident_id: uuid.UUID) -> dict[str, Any]:
    return {"incident_id": str(incident_id), "force_code": "XX", "incident_type": "domestic_abuse",
            "occurred_at": "2026-01-01T20:00:00+00:00", "summary": "shouting, a neighbour called",
            "disclosure_fields": ["summary"]}


async def add_notification(
    engine: AsyncEngine, *, created_at: datetime, children: int
) -> uuid.UUID:
    notification_id, incident_id = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(insert(notifications).values(
            id=notification_id, incident_id=incident_id,
            recipient_key=f"school:{incident_id.hex[:7]}",
            school_urn=str(secrets.randbelow(900000) + 100000), recipient_role="dsl",
            state="acknowledged", incident=incident(incident_id), push_at=created_at,
            created_at=created_at, acknowledged_at=created_at,
            action_taken="Zara seen by the school nurse"))
        await conn.execute(insert(notification_actions).values(
            notification_id=notification_id, type="school_nurse", on_date=created_at.date(),
            note="Zara's mum asked for a call", follow_up=False, recorded_at=created_at,
            recorded_by="dsl-1"))
        for _ in range(children):
            await conn.execute(insert(notification_children).values(
                notification_id=notification_id, child_id=uuid.uuid4(),
                child_key=secrets.token_hex(16), child=CHILD))
    return notification_id


async def action_notes(engine: AsyncEngine, notification_id: uuid.UUID) -> list[Any]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(
            select(notification_actions.c.type, notification_actions.c.note).where(
                notification_actions.c.notification_id == notification_id))]


async def add_review(engine: AsyncEngine, *, created_at: datetime,
                     resolved_at: datetime | None) -> uuid.UUID:
    review_id, incident_id = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(insert(reviews).values(
            review_id=review_id, incident_id=incident_id, child_index=0, child_id=uuid.uuid4(),
            la_code="999", status="open" if resolved_at is None else "resolved", child=CHILD,
            incident=incident(incident_id), candidates=[{"urn": "100001", "score": 0.8}],
            created_at=created_at, resolved_at=resolved_at,
            resolution=None if resolved_at is None else {"status": "matched", "urns": ["100001"]}))
    return review_id


async def notification(engine: AsyncEngine, notification_id: uuid.UUID) -> tuple[Any, int]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(notifications).where(
            notifications.c.id == notification_id))).one()
        kids = (await conn.execute(select(func.count()).where(
            notification_children.c.notification_id == notification_id))).scalar_one()
    return row, kids


async def review(engine: AsyncEngine, review_id: uuid.UUID) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(reviews).where(reviews.c.review_id == review_id))).one()


async def purge(settings: Settings, notifier_engine: AsyncEngine, matcher_engine: AsyncEngine,
                *, now: datetime, days: int = 90) -> tuple[int, int]:
    """Each service's own purge, as its own role."""
    kw: dict[str, Any] = {"topic_prefix": settings.topic_prefix, "days": days, "now": now,
                          "trigger": "cli"}
    return (await notifier_retention.run_retention(notifier_engine, **kw),
            await matcher_retention.run_retention(matcher_engine, **kw))


async def announced(engine: AsyncEngine, settings: Settings, service: str) -> list[ContentPurged]:
    """The purges `service` staged for the audit log (its own outbox, this test's prefix)."""
    async with engine.connect() as conn:
        values = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == f"{settings.topic_prefix}{service}").order_by(outbox.c.id)
        )).scalars()
    events = [parse_envelope(v, EVENT_TYPES).payload for v in values]
    return [e for e in events if isinstance(e, ContentPurged)]


async def test_old_content_is_erased_recent_kept_metadata_and_the_purges_announced(
    engine: AsyncEngine, settings: Settings, notifier_engine: AsyncEngine,
    matcher_engine: AsyncEngine,
) -> None:
    now = datetime.now(UTC)
    old_n = await add_notification(engine, created_at=now - timedelta(days=100), children=2)
    new_n = await add_notification(engine, created_at=now - timedelta(days=10), children=1)
    old_r = await add_review(engine, created_at=now - timedelta(days=120),
                             resolved_at=now - timedelta(days=100))
    open_r = await add_review(engine, created_at=now - timedelta(days=120), resolved_at=None)
    new_r = await add_review(engine, created_at=now - timedelta(days=120),
                             resolved_at=now - timedelta(days=10))

    notifications_purged, reviews_purged = await purge(settings, notifier_engine,
                                                       matcher_engine, now=now)

    assert notifications_purged >= 1 and reviews_purged >= 1
    row, kids = await notification(engine, old_n)
    assert kids == 0 and "summary" not in row.incident and "disclosure_fields" not in row.incident
    assert row.action_taken is None and await action_notes(engine, old_n) == [
        ("school_nurse", None)]  # the school's words go; what was done, and when, stays
    assert await action_notes(engine, new_n) == [("school_nurse", "Zara's mum asked for a call")]
    assert row.incident["incident_id"] == str(row.incident_id) and "purged_at" in row.incident
    assert row.state == "acknowledged" and row.school_urn and row.acknowledged_at
    row, kids = await notification(engine, new_n)
    assert kids == 1 and row.incident["summary"]
    purged = await review(engine, old_r)
    assert (purged.child, purged.candidates, purged.status) == ({}, [], "resolved")
    assert "summary" not in purged.incident and purged.resolution["urns"] == ["100001"]
    for kept in (open_r, new_r):
        assert (await review(engine, kept)).child == CHILD
    [by_notifier] = await announced(notifier_engine, settings, "notifier")
    [by_matcher] = await announced(matcher_engine, settings, "matcher")
    cutoff = now - timedelta(days=90)
    assert (by_notifier.kind, by_notifier.count, by_notifier.cutoff, by_notifier.trigger) == (
        "notifications", notifications_purged, cutoff, "cli")
    assert (by_matcher.kind, by_matcher.count, by_matcher.service) == (
        "reviews", reviews_purged, "matcher")


async def test_a_second_run_purges_and_announces_nothing_more(
    engine: AsyncEngine, settings: Settings, notifier_engine: AsyncEngine,
    matcher_engine: AsyncEngine,
) -> None:
    now = datetime.now(UTC)
    old_n = await add_notification(engine, created_at=now - timedelta(days=91), children=1)
    await purge(settings, notifier_engine, matcher_engine, now=now)
    first, _ = await notification(engine, old_n)
    staged = len(await announced(notifier_engine, settings, "notifier"))

    later = now + timedelta(seconds=1)
    assert await purge(settings, notifier_engine, matcher_engine, now=later) == (0, 0)
    assert (await notification(engine, old_n))[0].incident == first.incident
    assert len(await announced(notifier_engine, settings, "notifier")) == staged


async def test_the_period_is_configurable(
    engine: AsyncEngine, settings: Settings, notifier_engine: AsyncEngine,
    matcher_engine: AsyncEngine,
) -> None:
    now = datetime.now(UTC)
    week_old = await add_notification(engine, created_at=now - timedelta(days=8), children=1)
    await purge(settings, notifier_engine, matcher_engine, now=now, days=30)
    assert (await notification(engine, week_old))[1] == 1
    await purge(settings, notifier_engine, matcher_engine, now=now, days=7)
    assert (await notification(engine, week_old))[1] == 0


async def test_retention_run_prints_a_one_line_summary(
    engine: AsyncEngine, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    old_n = await add_notification(
        engine, created_at=datetime.now(UTC) - timedelta(days=200), children=1)
    assert await asyncio.to_thread(retention_run, settings) == 0
    out = capsys.readouterr().out.strip()
    summary = json.loads(out)
    assert "\n" not in out and summary["notifications_purged"] >= 1
    assert {"reviews_purged", "cutoff", "audit"} <= summary.keys()
    assert summary["audit"]["purged"] == 0
    assert (await notification(engine, old_n))[1] == 0


async def test_run_daily_purges_once_per_interval(
    engine: AsyncEngine, settings: Settings, notifier_engine: AsyncEngine,
) -> None:
    now = datetime.now(UTC)
    old_n = await add_notification(engine, created_at=now - timedelta(days=100), children=1)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        if len(slept) == 2:
            raise asyncio.CancelledError
        slept.append(seconds)

    with pytest.raises(asyncio.CancelledError):
        await run_daily(lambda: notifier_retention.run_retention(
            notifier_engine, topic_prefix=settings.topic_prefix, days=90, now=now,
            trigger="schedule"), sleep=sleep)

    assert slept == [86400.0, 86400.0]
    assert (await notification(engine, old_n))[1] == 0
    assert [e.trigger for e in await announced(notifier_engine, settings, "notifier")] == [
        "schedule"]


async def test_the_notifier_purges_on_its_schedule_and_the_audit_log_records_it(
    engine: AsyncEngine, settings: Settings, config: AuditSettings,
) -> None:
    started = datetime.now(UTC)
    own = NotifierSettings(**(settings.model_dump() | {"retention_interval_s": 0.05}))
    old_n = await add_notification(engine, created_at=started - timedelta(days=100), children=1)
    async with running(build_audit(config)), running(build_notifier(own)):
        for _ in range(300):
            logged = await purges_since(engine, started)
            if (await notification(engine, old_n))[1] == 0 and logged:
                break
            await asyncio.sleep(0.1)
    row, kids = await notification(engine, old_n)
    assert kids == 0 and "purged_at" in row.incident
    [entry, *_] = await purges_since(engine, started)
    assert (entry.actor, entry.channel) == ("system:retention", "schedule")
    assert "notifications erased by notifier" in entry.purpose and entry.child_key is None


async def purges_since(engine: AsyncEngine, since: datetime) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(audit_events).where(
            audit_events.c.action == "retention.purge", audit_events.c.at >= since)
            .order_by(audit_events.c.seq))).all())


async def test_a_purged_review_answers_410_not_an_error(
    engine: AsyncEngine, settings: Settings, notifier_engine: AsyncEngine,
    matcher_engine: AsyncEngine,
) -> None:
    from services.matcher.main import build_app as build_matcher
    from tests.support.tokens import bearer, person

    now = datetime.now(UTC)
    review_id = await add_review(engine, created_at=now - timedelta(days=120),
                                 resolved_at=now - timedelta(days=100))
    await purge(settings, notifier_engine, matcher_engine, now=now)
    officer = person("la_officer", las=["999"])
    async with running(build_matcher(settings)) as matcher:
        resp = await matcher.get(f"/v1/reviews/{review_id}", headers=bearer(officer, now=now))
    assert resp.status_code == 410
    assert resp.headers["content-type"].startswith("application/problem+json")


# a pinned clock: rows here are dated against it, never against the time of day
PINNED = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


async def add_outbox_row(engine: AsyncEngine, settings: Settings, service: str, *,
                         created_at: datetime, published_at: datetime | None) -> uuid.UUID:
    """A row of `service`'s own outbox whose event names a child."""
    event_id, incident_id = uuid.uuid4(), uuid.uuid4()
    body = IncidentIn(force_code="XX", incident_reference=f"R-{incident_id.hex[:8]}",
                      occurred_at=created_at, incident_type="domestic_abuse",
                      children=[ChildReport.model_validate(CHILD)])
    event = IncidentReceived(incident_id=incident_id, received_at=created_at, incident=body)
    async with engine.begin() as conn:
        await conn.execute(insert(outbox).values(
            source=settings.topic(service), topic=settings.topic("incidents.v1"),
            key=str(incident_id), event_id=event_id,
            value=wrap(event, event_id=event_id, occurred_at=created_at).to_bytes(),
            created_at=created_at, published_at=published_at))
    return event_id


async def outbox_values(engine: AsyncEngine, settings: Settings, service: str
                        ) -> dict[uuid.UUID, bytes]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.event_id, outbox.c.value).where(
            outbox.c.source == settings.topic(service)))).all()
    return {r.event_id: r.value for r in rows}


@pytest.mark.parametrize("service", ["notifier", "matcher"])
async def test_published_outbox_rows_go_after_a_day_unpublished_ones_stay(
    settings: Settings, notifier_engine: AsyncEngine, matcher_engine: AsyncEngine,
    service: str,
) -> None:
    own = {"notifier": notifier_engine, "matcher": matcher_engine}[service]
    sent = await add_outbox_row(own, settings, service, created_at=PINNED - timedelta(days=3),
                                published_at=PINNED - timedelta(days=2))
    just_sent = await add_outbox_row(own, settings, service,
                                     created_at=PINNED - timedelta(hours=2),
                                     published_at=PINNED - timedelta(hours=1))
    owed = await add_outbox_row(own, settings, service, created_at=PINNED - timedelta(days=100),
                                published_at=None)

    await purge(settings, notifier_engine, matcher_engine, now=PINNED)

    left = await outbox_values(own, settings, service)
    assert sent not in left and {just_sent, owed} <= left.keys()
    assert b"Amelia" in left[owed]
    [announcement] = await announced(own, settings, service)
    assert (announcement.kind, announcement.count, announcement.service) == (
        "outbox events", 1, service)
    assert (announcement.cutoff, announcement.retention_days) == (PINNED - timedelta(days=1), 1)


async def test_the_outbox_purge_is_recorded_by_the_audit_log(
    engine: AsyncEngine, settings: Settings, config: AuditSettings,
    notifier_engine: AsyncEngine, matcher_engine: AsyncEngine,
) -> None:
    from services.matcher.main import build_app as build_matcher

    await add_outbox_row(matcher_engine, settings, "matcher",
                         created_at=PINNED - timedelta(days=3),
                         published_at=PINNED - timedelta(days=2))
    await purge(settings, notifier_engine, matcher_engine, now=PINNED)
    [announcement] = await announced(matcher_engine, settings, "matcher")
    async with running(build_audit(config)), running(build_matcher(settings)):
        for _ in range(300):
            async with engine.connect() as conn:
                entry = (await conn.execute(select(audit_events).where(
                    audit_events.c.id == announcement.purge_id))).first()
            if entry is not None:
                break
            await asyncio.sleep(0.1)
    assert entry is not None and (entry.actor, entry.action) == (
        "system:retention", "retention.purge")
    assert entry.purpose.startswith("retention 1d: 1 outbox events erased by matcher")
