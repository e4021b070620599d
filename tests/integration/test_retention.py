"""Content retention against the real database: old child data erased, metadata and audit kept.

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

from services.audit import cli
from services.audit.main import build_app
from services.audit.models import audit_events
from services.audit.settings import AuditSettings, audit_settings
from services.common.retention import run_daily
from services.common.settings import Settings
from services.matcher.models import reviews
from services.notifier.models import notification_children, notifications
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
            created_at=created_at, acknowledged_at=created_at))
        for _ in range(children):
            await conn.execute(insert(notification_children).values(
                notification_id=notification_id, child_id=uuid.uuid4(),
                child_key=secrets.token_hex(16), child=CHILD))
    return notification_id


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


async def purges_at(engine: AsyncEngine, at: datetime) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(audit_events).where(
            audit_events.c.action == "retention.purge", audit_events.c.at == at)
            .order_by(audit_events.c.seq))).all())


async def test_old_content_is_erased_recent_kept_metadata_and_audit_remain(
    engine: AsyncEngine, config: AuditSettings
) -> None:
    now = datetime.now(UTC)
    old_n = await add_notification(engine, created_at=now - timedelta(days=100), children=2)
    new_n = await add_notification(engine, created_at=now - timedelta(days=10), children=1)
    old_r = await add_review(engine, created_at=now - timedelta(days=120),
                             resolved_at=now - timedelta(days=100))
    open_r = await add_review(engine, created_at=now - timedelta(days=120), resolved_at=None)
    new_r = await add_review(engine, created_at=now - timedelta(days=120),
                             resolved_at=now - timedelta(days=10))

    summary = await cli.purge_content(engine, config, now=now, channel="cli")

    assert summary["notifications_purged"] >= 1 and summary["reviews_purged"] >= 1
    assert summary["cutoff"] == (now - timedelta(days=90)).isoformat()
    row, kids = await notification(engine, old_n)
    assert kids == 0 and "summary" not in row.incident and "disclosure_fields" not in row.incident
    assert row.incident["incident_id"] == str(row.incident_id) and "purged_at" in row.incident
    assert row.state == "acknowledged" and row.school_urn and row.acknowledged_at
    row, kids = await notification(engine, new_n)
    assert kids == 1 and row.incident["summary"]
    purged = await review(engine, old_r)
    assert (purged.child, purged.candidates, purged.status) == ({}, [], "resolved")
    assert "summary" not in purged.incident and purged.resolution["urns"] == ["100001"]
    for kept in (open_r, new_r):
        assert (await review(engine, kept)).child == CHILD
    events = await purges_at(engine, now)
    assert [(e.channel, e.actor) for e in events] == [("cli", "system:retention")] * 2
    assert "notifications erased" in events[0].purpose
    assert "reviews erased" in events[1].purpose


async def test_a_second_run_purges_nothing_more(engine: AsyncEngine, config: AuditSettings) -> None:
    now = datetime.now(UTC)
    old_n = await add_notification(engine, created_at=now - timedelta(days=91), children=1)
    await cli.purge_content(engine, config, now=now, channel="cli")
    first, _ = await notification(engine, old_n)

    later = now + timedelta(seconds=1)
    again = await cli.purge_content(engine, config, now=later, channel="cli")

    assert (again["notifications_purged"], again["reviews_purged"]) == (0, 0)
    assert (await notification(engine, old_n))[0].incident == first.incident
    assert await purges_at(engine, later) == []


async def test_the_period_is_configurable(engine: AsyncEngine, settings: Settings) -> None:
    now = datetime.now(UTC)
    week_old = await add_notification(engine, created_at=now - timedelta(days=8), children=1)
    config = AuditSettings(**(settings.model_dump() | {"retention_content_days": 7}))
    await cli.purge_content(engine, config, now=now, channel="cli")
    assert (await notification(engine, week_old))[1] == 0


async def test_retention_run_prints_a_one_line_summary(
    engine: AsyncEngine, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    old_n = await add_notification(
        engine, created_at=datetime.now(UTC) - timedelta(days=200), children=1)
    assert await asyncio.to_thread(cli.retention_run, settings) == 0
    out = capsys.readouterr().out.strip()
    summary = json.loads(out)
    assert "\n" not in out and summary["notifications_purged"] >= 1
    assert {"reviews_purged", "cutoff", "audit"} <= summary.keys()
    assert (await notification(engine, old_n))[1] == 0


async def test_run_daily_purges_once_per_interval(
    engine: AsyncEngine, config: AuditSettings
) -> None:
    now = datetime.now(UTC)
    old_n = await add_notification(engine, created_at=now - timedelta(days=100), children=1)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        if len(slept) == 2:
            raise asyncio.CancelledError
        slept.append(seconds)

    with pytest.raises(asyncio.CancelledError):
        await run_daily(lambda: cli.purge_content(engine, config, now=now, channel="schedule"),
                        sleep=sleep)

    assert slept == [86400.0, 86400.0]
    assert (await notification(engine, old_n))[1] == 0
    assert [e.channel for e in await purges_at(engine, now)][:1] == ["schedule"]


async def test_the_audit_service_runs_the_purge_on_its_schedule(
    engine: AsyncEngine, settings: Settings
) -> None:
    config = AuditSettings(**(settings.model_dump() | {"retention_interval_s": 0.05}))
    old_n = await add_notification(
        engine, created_at=datetime.now(UTC) - timedelta(days=100), children=1)
    async with running(build_app(config)):
        for _ in range(100):
            if (await notification(engine, old_n))[1] == 0:
                break
            await asyncio.sleep(0.05)
    row, kids = await notification(engine, old_n)
    assert kids == 0 and "purged_at" in row.incident


async def test_a_purged_review_answers_410_not_an_error(
    engine: AsyncEngine, config: AuditSettings, settings: Settings
) -> None:
    from services.matcher.main import build_app as build_matcher
    from tests.support.tokens import bearer, person

    now = datetime.now(UTC)
    review_id = await add_review(engine, created_at=now - timedelta(days=120),
                                 resolved_at=now - timedelta(days=100))
    await cli.purge_content(engine, config, now=now, channel="cli")
    officer = person("la_officer", las=["999"])
    async with running(build_matcher(settings)) as matcher:
        resp = await matcher.get(f"/v1/reviews/{review_id}", headers=bearer(officer, now=now))
    assert resp.status_code == 410
    assert resp.headers["content-type"].startswith("application/problem+json")
