"""The partnership's figures end to end: `notifications.v1` events produced onto the topic reach
the notifier's own `figures` group (started by its main.py), the read model takes them once and
in any order, and the portal's page and CSV show them to the partnership of those LAs only."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas import topics
from schemas.envelope import Envelope, wrap
from schemas.notifications import (
    Action,
    ChildOutcome,
    ChildOutcomeKind,
    LifecycleEvent,
    NotificationAcknowledged,
    NotificationActionAdded,
    NotificationEscalated,
    NotificationPushed,
    NotificationRetracted,
    NotificationScheduled,
)
from services.common.auth_api import PLAIN_SESSION_COOKIE
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import Settings
from services.notifier.figures import CSV_HEADER
from services.notifier.figures_store import figures_notifications, figures_reviews
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.support.api import running
from tests.support.ids import next_force, next_la, next_urn
from tests.support.tokens import mint, person

pytestmark = pytest.mark.integration
MON = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday of 2026-W49, before school
DEADLINE = MON.replace(hour=8, minute=45)
WEEK = {"from": "2026-W49", "to": "2026-W49"}


def school_notification(la: str, force: str, *, late: bool = False) -> list[LifecycleEvent]:
    """A school's notification: scheduled, pushed, acknowledged with an action."""
    ids = {"incident_id": uuid.uuid4(), "notification_id": uuid.uuid4(), "force_code": force,
           "school_urn": next_urn(), "la_code": la}
    acked = MON + timedelta(hours=4 if late else 1)
    return [
        NotificationScheduled(**ids, at=MON, recipient_role="school", child_indexes=[0],
                              push_at=MON + timedelta(minutes=30), deadline_at=DEADLINE,
                              repeat_children=1),
        NotificationPushed(**ids, at=MON + timedelta(minutes=30), channel="email"),
        NotificationAcknowledged(**ids, at=acked, acknowledger_role="dsl", actions=[
            Action(type="early_help", on=acked.date())]),
    ]


def outcome(la: str, force: str, kind: ChildOutcomeKind, *, at: datetime = MON,
            review: uuid.UUID | None = None, by_review: bool = False,
            incident: uuid.UUID | None = None) -> ChildOutcome:
    return ChildOutcome(incident_id=incident or uuid.uuid4(), at=at, force_code=force,
                        child_index=0, outcome=kind, la_code=la, review_id=review,
                        decided_by="review" if by_review else "engine")


async def produce(settings: Settings, envelopes: list[Envelope[Any]]) -> None:
    """Onto the topic as the notifier's outbox relay puts them: keyed by incident id."""
    topic = settings.topic(topics.NOTIFICATIONS)
    await ensure_topics(settings.kafka(), [topic], layout=settings.topic_layout())
    producer = make_producer(settings.kafka())
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(topic, envelope.to_bytes(),
                                         key=str(envelope.payload.incident_id).encode())
    finally:
        await producer.stop()


async def until(engine: AsyncEngine, query: Any, want: int) -> None:
    for _ in range(300):
        async with engine.connect() as conn:
            if (await conn.execute(query)).scalar_one() == want:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the read model never held {want}")


def as_(role: str, las: list[str]) -> dict[str, str]:
    # the portal here runs without cookie_secure: the cookie's plain name
    return {"Cookie": f"{PLAIN_SESSION_COOKIE}={mint(person(role, las=las))}"}


def read_csv(resp: httpx.Response) -> list[dict[str, str]]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(resp.text)))


async def test_events_become_figures_once_in_any_order_for_the_partnership_alone(
    settings: Settings, notifier_engine: AsyncEngine
) -> None:
    la, other, force = next_la(), next_la(), next_force("F")
    events: list[LifecycleEvent] = []
    for k in range(6):
        events += school_notification(la, force, late=k == 5)
    disordered = school_notification(la, force)
    events += [disordered[1], disordered[0], disordered[2]]  # pushed before it was scheduled
    first = disordered[0]
    assert isinstance(first, NotificationScheduled)
    ids = {"incident_id": first.incident_id, "notification_id": first.notification_id,
           "force_code": force, "la_code": la, "school_urn": first.school_urn}
    events += [NotificationEscalated(**ids, at=MON + timedelta(hours=3), stage="deputy"),
               NotificationActionAdded(**ids, at=MON + timedelta(days=1), action=Action(
                   type="camhs", on=(MON + timedelta(days=1)).date()))]
    # a sister joins the notification later (told about before too): one more Scheduled of
    # its own, sent twice; the first schedule's deadline stands
    joined = NotificationScheduled(**ids, at=MON + timedelta(hours=5), recipient_role="school",
                                   child_indexes=[1], push_at=MON + timedelta(hours=5),
                                   deadline_at=DEADLINE + timedelta(days=1), repeat_children=1)
    events += [joined, joined]
    withdrawn = school_notification(la, force)[0]
    assert isinstance(withdrawn, NotificationScheduled)
    events += [withdrawn, NotificationRetracted(
        incident_id=withdrawn.incident_id, notification_id=withdrawn.notification_id,
        force_code=force, la_code=la, at=MON, reason="incident_withdrawn")]
    events += [outcome(la, force, "unmatched") for _ in range(5)]
    review, incident = uuid.uuid4(), uuid.uuid4()
    events += [outcome(la, force, "matched", at=MON + timedelta(hours=2), review=review,
                       by_review=True, incident=incident),  # resolved, seen first
               outcome(la, force, "review", review=review, incident=incident)]
    events += school_notification(other, force)
    envelopes = [wrap(e, occurred_at=e.at) for e in events]
    app = build_notifier(NotifierSettings(**settings.model_dump()))
    async with running(app) as client:
        await produce(settings, [*envelopes, *envelopes[:3]])  # a redelivery of the first
        n = figures_notifications.c
        await until(notifier_engine, select(func.count()).where(
            n.la_code == la, n.acknowledged_at.is_not(None), n.scheduled_at.is_not(None)), 7)
        await until(notifier_engine, select(func.count()).where(
            figures_reviews.c.review_id == review, figures_reviews.c.opened_at.is_not(None)), 1)
        await until(notifier_engine, select(func.count()).where(
            n.la_code == other, n.acknowledged_at.is_not(None)), 1)
        await asyncio.sleep(0.5)  # the duplicates, after the events they repeat

        mine = as_("partnership", [la])
        rows = read_csv(await client.get("/portal/partnership.csv", params=WEEK, headers=mine))
        [row] = rows
        assert list(row) == list(CSV_HEADER)
        assert (row["la_code"], row["force_code"], row["iso_week"], row["week_starts"]) == (
            la, force, "2026-W49", "2026-11-30")
        assert row["notifications"] == "7"  # the withdrawn one is not counted
        assert row["pushed_before_school_day_pct"] == "100.0"
        assert row["acknowledged_before_school_day_pct"] == f"{6 / 7 * 100:.1f}"
        assert row["minutes_to_acknowledge_median"] == "60"
        assert row["minutes_to_acknowledge_p90"] == "240"
        assert row["escalations_deputy"] == "[c]"
        assert row["escalations_la"] == "0"
        assert row["children_notified_before"] == "8"
        assert row["actions_early_help"] == "7"  # once each, though the first came twice
        assert row["actions_camhs"] == "[c]"
        assert row["children_routed_to_la"] == "5"
        assert (row["reviews_opened"], row["reviews_resolved"]) == ("[c]", "[c]")
        assert row["review_age_minutes_median"] == "[c]"
        async with notifier_engine.connect() as conn:
            kept = (await conn.execute(select(figures_reviews).where(
                figures_reviews.c.review_id == review))).one()
        assert kept.resolved_at - kept.opened_at == timedelta(hours=2)

        page = await client.get("/portal/partnership", params=WEEK, headers=mine)
        assert page.status_code == 200, page.text
        assert page.text.count('<svg class="app-chart"') == 3
        assert "fewer than 5" in page.text and "Target 95%" in page.text
        assert 'href="/portal/partnership"' in page.text  # the navigation entry

        # another LA's figures are refused, on the page and in the CSV
        for path in ("/portal/partnership", "/portal/partnership.csv"):
            refused = await client.get(path, params=WEEK | {"la": other}, headers=mine)
            assert refused.status_code == 403, path
            assert other not in refused.text and force not in refused.text
        # an LA officer sees the same figures, for their own LA only
        theirs = read_csv(await client.get("/portal/partnership.csv", params=WEEK,
                                           headers=as_("la_officer", [other])))
        assert [(r["la_code"], r["notifications"]) for r in theirs] == [(other, "[c]")]
        # a partnership of both LAs sees both, one row each
        both = read_csv(await client.get("/portal/partnership.csv", params=WEEK,
                                         headers=as_("partnership", [la, other])))
        assert [r["la_code"] for r in both] == sorted([la, other])
        # a DSL has no figures: off to sign in, as when signed out
        for headers in (as_("dsl", []), {}):
            resp = await client.get("/portal/partnership", headers=headers)
            assert (resp.status_code, resp.headers["location"]) == (303, "/portal/sign-in")


async def test_a_force_filter_and_bad_weeks(settings: Settings, notifier_engine: AsyncEngine
                                           ) -> None:
    la, force, elsewhere = next_la(), next_force("F"), next_force("G")
    events = [*school_notification(la, force), *school_notification(la, elsewhere)]
    app = build_notifier(NotifierSettings(**settings.model_dump()))
    async with running(app) as client:
        await produce(settings, [wrap(e, occurred_at=e.at) for e in events])
        n = figures_notifications.c
        await until(notifier_engine, select(func.count()).where(
            n.la_code == la, n.acknowledged_at.is_not(None)), 2)
        mine = as_("partnership", [la])
        rows = read_csv(await client.get("/portal/partnership.csv",
                                         params=WEEK | {"force": force}, headers=mine))
        assert [r["force_code"] for r in rows] == [force]
        wide = read_csv(await client.get("/portal/partnership.csv", headers=mine, params={
            "from": "2026-W48", "to": "2026-W50"}))
        assert [(r["force_code"], r["iso_week"]) for r in wide] == [
            (f, w) for f in sorted([force, elsewhere]) for w in ("2026-W48", "2026-W49",
                                                                   "2026-W50")]
        bad = await client.get("/portal/partnership", headers=mine, params={
            "from": "2026-W60", "force": "not a force"})
        assert bad.status_code == 200
        assert bad.text.count('class="govuk-error-message"') == 2
        assert "Error: Partnership figures" in bad.text
        assert 'href="#from"' in bad.text and 'href="#force"' in bad.text
