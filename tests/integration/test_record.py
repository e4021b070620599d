"""The school's own record: a notification as a chronology entry (JSON, and CSV with a row
per child, its cells safe in a spreadsheet), through the API and the portal, for the school's
own people only, each download an audited disclosure per child staged before the body."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.incidents import ChildReport
from schemas.matching import ChildMatched, SchoolMatch
from services.common.app import create_app
from services.common.local_time import LONDON
from services.common.models import outbox
from services.common.settings import Settings
from services.notifier.api import router as notifications_router
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps, on_child_matched
from services.notifier.record import CSV_COLUMNS, FORMAT, SOURCE, neutralised
from services.notifier.record import router as record_router
from tests.support.clock import Clock
from tests.support.notifier import MATCHED_AT, School, add_school, facts, rows_for
from tests.support.portal import new_dsl, portal_client, sign_in
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("cell", "safe"), [
    ("=SUM(A1)", "'=SUM(A1)"), ("+44 121", "'+44 121"), ("-1", "'-1"), ("@cmd", "'@cmd"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("Ava", "Ava"), ("", ""), ("a=b", "a=b"),
], ids=["equals", "plus", "minus", "at", "tab", "cr", "name", "empty", "inside"])
def test_a_cell_a_spreadsheet_would_run_is_neutralised(cell: str, safe: str) -> None:
    assert neutralised(cell) == safe


@pytest.fixture
async def api(settings: Settings, notifier_engine: AsyncEngine, clock: Clock,
              notifier_deps: NotifierDeps) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings, engine=notifier_engine, clock=clock, deps=notifier_deps,
        registry=CollectorRegistry()))
    app.include_router(record_router)
    app.include_router(notifications_router)  # to acknowledge with actions first
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        yield client


async def notify(deps: NotifierDeps, engine: AsyncEngine, school: School) -> uuid.UUID:
    """Two children of one incident at the school, one with names a spreadsheet would run."""
    incident_id = uuid.uuid4()
    for index, (given, family) in enumerate((("Zara", "Okafor"), ("=HYPERLINK(1)", "@Okafor"))):
        await on_child_matched(wrap(ChildMatched(
            child_id=uuid.uuid5(incident_id, str(index)), child_index=index,
            incident=facts(incident_id), decided_by="engine", matched_at=MATCHED_AT,
            child=ChildReport(given_name=given, family_name=family,
                              date_of_birth="2015-01-09", present_at_incident=True,
                              voice_of_child="Secret voice"),
            schools=[SchoolMatch(urn=school.urn, la_code=school.la, score=30)])), deps=deps)
    [row] = await rows_for(engine, incident_id)
    return uuid.UUID(str(row.id))


async def exports(engine: AsyncEngine, notification_id: uuid.UUID) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        staged = (await conn.execute(select(outbox.c.value).where(
            outbox.c.topic.like("%disclosures.v1")))).scalars().all()
    found = [json.loads(v)["payload"] for v in staged]
    return [p for p in found if p.get("notification_id") == str(notification_id)
            and p["action"] == "notification.export"]


async def test_the_record_as_json_holds_what_the_school_may_see_and_is_audited_per_child(
    api: httpx.AsyncClient, notifier_engine: AsyncEngine, notifier_deps: NotifierDeps
) -> None:
    school = await add_school(notifier_engine)
    notification_id = await notify(notifier_deps, notifier_engine, school)
    dsl = person("dsl", schools=[school.urn])
    resp = await api.get(f"/v1/notifications/{notification_id}/record", headers=bearer(dsl))
    assert resp.status_code == 200, resp.text
    assert "attachment" in resp.headers["content-disposition"]
    entry = resp.json()
    assert (entry["format"], entry["source"], entry["force"]) == (FORMAT, SOURCE, "WMP")
    assert entry["incident_date_time"] == "2026-11-22T18:00:00+00:00"  # London, disclosed
    # the force's profile shows neither the type nor the summary, nor the child's voice
    assert entry["incident_type"] is None and entry["incident_summary"] is None
    assert "Secret" not in resp.text and entry["incident_reference"] is None
    assert entry["school"]["urn"] == school.urn and entry["school"]["name"].startswith("School")
    assert sorted(c["given_name"] for c in entry["children"]) == ["=HYPERLINK(1)", "Zara"]
    assert entry["children"][0].keys() == {
        "given_name", "family_name", "date_of_birth", "present_at_incident",
        "attended_next_morning", "attendance_recorded_at"}
    assert entry["notification"]["id"] == str(notification_id)
    assert entry["notification"]["link"].endswith(f"/portal/notifications/{notification_id}")
    assert entry["actions"] == []
    audited = await exports(notifier_engine, notification_id)
    assert len(audited) == 2 and {a["channel"] for a in audited} == {"export"}
    assert {a["actor"] for a in audited} == {dsl.subject}


async def test_the_record_as_csv_is_a_row_per_child_with_neutralised_cells(
    api: httpx.AsyncClient, notifier_engine: AsyncEngine, notifier_deps: NotifierDeps
) -> None:
    school = await add_school(notifier_engine)
    notification_id = await notify(notifier_deps, notifier_engine, school)
    headers = bearer(person("dsl", schools=[school.urn]))
    got = await api.get(f"/v1/notifications/{notification_id}/record?format=csv",
                        headers=headers)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert list(rows[0]) == list(CSV_COLUMNS) and len(rows) == 2
    by_name = {r["family_name"]: r for r in rows}
    assert by_name["'@Okafor"]["given_name"] == "'=HYPERLINK(1)"
    zara = by_name["Okafor"]
    assert (zara["source"], zara["force"], zara["present_at_incident"]) == (
        SOURCE, "WMP", "yes")
    assert zara["notification_id"] == str(notification_id) and zara["voice_of_child"] == ""
    assert len(await exports(notifier_engine, notification_id)) == 2
    bad = await api.get(f"/v1/notifications/{notification_id}/record?format=xml",
                        headers=headers)
    assert bad.status_code == 422


async def test_another_schools_dsl_gets_404_and_nothing_is_audited(
    api: httpx.AsyncClient, notifier_engine: AsyncEngine, notifier_deps: NotifierDeps
) -> None:
    school, other = await add_school(notifier_engine), await add_school(notifier_engine)
    notification_id = await notify(notifier_deps, notifier_engine, school)
    resp = await api.get(f"/v1/notifications/{notification_id}/record",
                         headers=bearer(person("dsl", schools=[other.urn])))
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "Okafor" not in resp.text
    assert await exports(notifier_engine, notification_id) == []


async def test_the_dsl_downloads_the_record_from_the_notification_page(
    settings: Settings, notifier_engine: AsyncEngine, clock: Clock,
    notifier_deps: NotifierDeps
) -> None:
    school, other = await add_school(notifier_engine), await add_school(notifier_engine)
    notification_id = await notify(notifier_deps, notifier_engine, school)
    async with portal_client(settings, notifier_engine, clock, notifier_deps) as portal:
        await sign_in(portal, clock, *await new_dsl(settings, school))
        shown = await portal.get(f"/portal/notifications/{notification_id}")
        assert "Download for your safeguarding records" in shown.text
        for fmt, kind in (("csv", "text/csv"), ("json", "application/json")):
            got = await portal.get(f"/portal/notifications/{notification_id}/record.{fmt}")
            assert got.status_code == 200 and got.headers["content-type"].startswith(kind)
            assert got.headers["content-security-policy"].startswith("default-src 'none'")
        assert "Zara" in got.text
        portal.cookies.clear()
        await sign_in(portal, clock, *await new_dsl(settings, other))
        refused = await portal.get(f"/portal/notifications/{notification_id}/record.csv")
        assert refused.status_code == 404 and "Zara" not in refused.text
    # the view, then two downloads of two children each
    assert len(await exports(notifier_engine, notification_id)) == 4


async def test_the_record_carries_the_actions_the_school_recorded(
    api: httpx.AsyncClient, notifier_engine: AsyncEngine, notifier_deps: NotifierDeps,
    clock: Clock,
) -> None:
    on = clock.now.astimezone(LONDON).date().isoformat()  # the day it came in
    school = await add_school(notifier_engine)
    notification_id = await notify(notifier_deps, notifier_engine, school)
    dsl = bearer(person("dsl", schools=[school.urn]))
    acked = await api.post(f"/v1/notifications/{notification_id}/acknowledge", headers=dsl,
                           json={"actions": [{"type": "early_help", "on": on,
                                              "note": "CAF opened with mum"}]})
    assert acked.status_code == 200, acked.text
    followed = await api.post(f"/v1/notifications/{notification_id}/actions", headers=dsl,
                              json={"type": "camhs", "on": on})
    assert followed.status_code == 201, followed.text
    entry = (await api.get(f"/v1/notifications/{notification_id}/record",
                           headers=dsl)).json()
    assert [(a["kind"], a["description"]) for a in entry["actions"]][1:] == [
        ("Early Help started (CAF)", "CAF opened with mum"),
        ("Referral to CAMHS (follow-up)", "")]
    assert entry["actions"][1]["at"] == on
