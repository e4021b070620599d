"""The notifier and corrections: a child updated in place (and what changed shown to a DSL
who had read it), moved to another school (retracted here, told there), withdrawn alone, and
older versions arriving late changing nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select, update

from schemas import topics
from schemas.envelope import wrap
from schemas.incidents import ChildReport, ChildWithdrawn, IncidentCorrected, IncidentIn
from schemas.matching import ChildMatched, ChildNeedsReview, SchoolMatch, child_id_for
from services.common.app import create_app
from services.common.models import outbox
from services.notifier.api import router
from services.notifier.content import opened_children
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps
from services.notifier.models import emails, notification_children, notifications, review_alerts
from tests.support.clock import Clock
from tests.support.notifier import School, add_school, child, facts, handle, rows_for
from tests.support.portal import new_dsl, sign_in
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration


def decided(incident_id: uuid.UUID, school: School, kid: ChildReport, *, index: int = 0,
            version: int = 1, at: Any) -> Any:
    return wrap(ChildMatched(
        child_id=child_id_for(incident_id, index), child_index=index,
        incident=facts(incident_id), child=kid, decided_by="engine",
        schools=[SchoolMatch(urn=school.urn, la_code=school.la, score=30)], matched_at=at,
        version=version))


async def apply(deps: NotifierDeps, envelope: Any) -> None:
    await handle(envelope, deps=deps)


async def staged(deps: NotifierDeps, incident_id: uuid.UUID, topic: str) -> list[dict[str, Any]]:
    async with deps.engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.topic, outbox.c.value)
                                   .order_by(outbox.c.id))).all()
    found = [json.loads(r.value) for r in rows if r.topic.endswith(topic)]
    return [f for f in found if str(incident_id) in json.dumps(f["payload"])]


async def children_of(deps: NotifierDeps, notification_id: uuid.UUID) -> list[Any]:
    async with deps.engine.connect() as conn:
        return [SimpleNamespace(**child) for child in opened_children(conn, (
            r._mapping for r in await conn.execute(select(notification_children).where(
                notification_children.c.notification_id == notification_id))))]


async def mark(deps: NotifierDeps, notification_id: uuid.UUID, **values: Any) -> None:
    async with deps.engine.begin() as conn:
        await conn.execute(update(notifications).where(notifications.c.id == notification_id)
                           .values(**values))


@pytest.fixture
async def api(settings, notifier_engine, clock, notifier_deps) -> AsyncIterator[Any]:
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings, engine=notifier_engine, clock=clock, deps=notifier_deps,
        registry=CollectorRegistry()))
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        yield client


async def test_same_school_is_updated_in_place_and_a_reader_sees_what_changed(
        settings, notifier_deps, clock: Clock, api, portal) -> None:
    school = await add_school(notifier_deps.engine)
    incident_id = uuid.uuid4()
    await apply(notifier_deps, decided(incident_id, school, child("Ada"), at=clock.now))
    [row] = await rows_for(notifier_deps.engine, incident_id)
    as_dsl = bearer(person("dsl", schools=[school.urn]))
    assert (await api.get(f"/v1/notifications/{row.id}", headers=as_dsl)).json()["changes"] == []

    clock.now += timedelta(minutes=2)
    fixed = child("Ada").model_copy(update={"present_at_incident": False,
                                            "voice_of_child": "Corrected words"})
    await apply(notifier_deps, decided(incident_id, school, fixed, version=2, at=clock.now))
    await apply(notifier_deps, decided(  # an older decision, late: nothing changes
        incident_id, school, child("Ada"), at=clock.now))
    [same] = await rows_for(notifier_deps.engine, incident_id)
    assert same.id == row.id
    [kid] = await children_of(notifier_deps, row.id)
    assert (kid.version, kid.child["present_at_incident"]) == (2, False)

    shown = (await api.get(f"/v1/notifications/{row.id}", headers=as_dsl)).json()
    # the profile shows present_at_incident, not the child's words: only that is named
    assert shown["changes"] == [{"version": 2, "at": clock.now.isoformat(),
                                 "fields": ["present_at_incident"]}]
    assert shown["children"][0]["present_at_incident"] is False
    assert "Corrected words" not in json.dumps(shown)
    updated = await staged(notifier_deps, incident_id, topics.NOTIFICATIONS)
    assert [(e["type"], e["payload"]["child_indexes"]) for e in updated
            if e["type"] == "NotificationUpdated"] == [("NotificationUpdated", [0])]

    email, totp = await new_dsl(settings, school)
    await sign_in(portal, clock, email, totp)
    page = await portal.get(f"/portal/notifications/{row.id}")
    assert page.status_code == 200
    assert "Updated by police on" in page.text and "Present at the incident" in page.text


async def test_a_child_moved_elsewhere_is_retracted_here_and_told_there(notifier_deps,
                                                                         clock) -> None:
    pushed, unpushed, other = [await add_school(notifier_deps.engine) for _ in range(3)]
    for first, state, closed in ((pushed, "sent", "retracted"), (unpushed, None, "cancelled")):
        incident_id = uuid.uuid4()
        await apply(notifier_deps, decided(incident_id, first, child("Ben"), at=clock.now))
        [old] = await rows_for(notifier_deps.engine, incident_id)
        if state:
            await mark(notifier_deps, old.id, state=state, sent_at=clock.now)
        await apply(notifier_deps, decided(incident_id, other, child("Ben"), version=2,
                                           at=clock.now))
        rows = {r.school_urn: r for r in await rows_for(notifier_deps.engine, incident_id)}
        assert rows[first.urn].state == closed
        assert rows[other.urn].state == "scheduled"
        assert [k.version for k in await children_of(notifier_deps, rows[other.urn].id)] == [2]
        retracted = [e["payload"] for e in await staged(
            notifier_deps, incident_id, topics.NOTIFICATIONS)
            if e["type"] == "NotificationRetracted"]
        assert [(r["reason"], r["child_indexes"], r["school_urn"]) for r in retracted] == [
            ("corrected", [], first.urn)]
        audited = [e["payload"]["action"] for e in await staged(
            notifier_deps, incident_id, topics.DISCLOSURES)]
        assert audited == ["notification.retracted" if state else "notification.cancelled"]
        async with notifier_deps.engine.connect() as conn:
            notices = (await conn.execute(select(emails.c.kind).where(
                emails.c.notification_ids.contains([str(old.id)])))).scalars().all()
        assert list(notices) == (["retraction"] if state else [])


async def test_a_withdrawn_child_leaves_and_never_comes_back(notifier_deps, clock) -> None:
    school = await add_school(notifier_deps.engine)
    incident_id = uuid.uuid4()
    for index, given in enumerate(("Cleo", "Dev")):
        await apply(notifier_deps, decided(incident_id, school, child(given), index=index,
                                           at=clock.now))
    [row] = await rows_for(notifier_deps.engine, incident_id)
    await mark(notifier_deps, row.id, state="viewed", sent_at=clock.now, viewed_at=clock.now)
    withdrawn = wrap(ChildWithdrawn(incident_id=incident_id, force_code="WMP", child_index=1,
                                    withdrawn_at=clock.now, reason="not in the household"))
    await apply(notifier_deps, withdrawn)
    await apply(notifier_deps, withdrawn)
    await apply(notifier_deps, decided(incident_id, school, child("Dev"), index=1,
                                       at=clock.now))  # redelivered under a new id: too late
    [kept] = await rows_for(notifier_deps.engine, incident_id)
    assert kept.state == "viewed"
    assert [k.child["given_name"] for k in await children_of(notifier_deps, row.id)] == ["Cleo"]
    assert kept.changes == [{"version": 1, "at": clock.now.isoformat(), "fields": ["children"]}]
    retracted = [e["payload"] for e in await staged(notifier_deps, incident_id,
                                                    topics.NOTIFICATIONS)
                 if e["type"] == "NotificationRetracted"]
    assert [(r["reason"], r["child_indexes"]) for r in retracted] == [("child_withdrawn", [1])]
    [audit] = await staged(notifier_deps, incident_id, topics.DISCLOSURES)
    assert audit["payload"]["purpose"] == "police withdrew the child: not in the household"
    assert "Dev" not in json.dumps(retracted)


async def test_incident_facts_follow_the_newest_version_only(notifier_deps, clock) -> None:
    school = await add_school(notifier_deps.engine)
    incident_id = uuid.uuid4()
    await apply(notifier_deps, decided(incident_id, school, child("Eve"), at=clock.now))
    [row] = await rows_for(notifier_deps.engine, incident_id)
    await mark(notifier_deps, row.id, viewed_at=clock.now)
    body = IncidentIn(force_code="WMP", incident_reference="WMP-fix", occurred_at=clock.now,
                      incident_type="domestic_abuse", summary="Corrected summary",
                      children=[child("Eve")])
    await apply(notifier_deps, wrap(IncidentCorrected(
        incident_id=incident_id, version=3, received_at=clock.now, incident=body,
        changed_children=[], disclosure_fields=["occurred_at", "summary"])))
    await apply(notifier_deps, decided(incident_id, school, child("Eve"), version=2,
                                       at=clock.now))  # version 2's facts: older, kept out
    [now_row] = await rows_for(notifier_deps.engine, incident_id)
    assert (now_row.incident_version, now_row.incident["summary"]) == (3, "Corrected summary")
    assert now_row.changes == [{"version": 3, "at": clock.now.isoformat(),
                                "fields": ["occurred_at", "summary"]}]


async def test_a_corrected_child_sent_to_review_leaves_its_school(notifier_deps, clock) -> None:
    school = await add_school(notifier_deps.engine)
    incident_id = uuid.uuid4()
    await apply(notifier_deps, decided(incident_id, school, child("Finn"), at=clock.now))
    review_id = uuid.uuid4()
    await apply(notifier_deps, wrap(ChildNeedsReview(
        child_id=child_id_for(incident_id, 0), child_index=0, incident_id=incident_id,
        review_id=review_id, la_code=school.la, candidates=2, queued_at=clock.now,
        version=2)))
    [row] = await rows_for(notifier_deps.engine, incident_id)
    assert row.state == "cancelled"
    async with notifier_deps.engine.connect() as conn:
        alert = (await conn.execute(select(review_alerts).where(
            review_alerts.c.review_id == review_id))).one()
    assert alert.resolved_at is None
