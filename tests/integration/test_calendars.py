"""School calendars and escalation minutes: the registry stores them, the notifier obeys them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.incidents import ChildReport
from schemas.matching import ChildMatched, IncidentFacts, SchoolMatch
from services.common.app import create_app
from services.common.context import AppContext
from services.common.db import UnitOfWork
from services.common.settings import Settings
from services.matcher import registry
from services.matcher.registry_api import router
from services.matcher.registry_models import SchoolIn
from services.notifier.handlers import NotifierDeps, on_child_matched
from services.notifier.models import notification_children, notifications
from tests.support.api import running
from tests.support.clock import Clock
from tests.support.directory import deliver_registry
from tests.support.ids import next_la, next_urn
from tests.support.registry import overrides, run_cli
from tests.support.registry_files import calendar_csv

pytestmark = pytest.mark.integration
Capsys = pytest.CaptureFixture[str]
Api = httpx.AsyncClient
MATCHED_AT = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)  # Sunday evening (GMT)
PREFIX = "calendars."  # the registry.v1 events this module stages (no relay publishes them)
MONDAY, TUESDAY, WEDNESDAY = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)


def at_seven(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 7, 0, tzinfo=UTC)


@pytest.fixture
async def api(settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    ctx = AppContext(settings=settings, engine=engine, registry=CollectorRegistry(),
                     clock=Clock(MATCHED_AT))
    app = create_app(title="registry under test", service="matcher", ctx=ctx)
    app.include_router(router)
    async with running(app) as client:
        yield client


@pytest.fixture
async def engine(matcher_engine: AsyncEngine) -> AsyncEngine:
    """The registry's tests act as the matcher, the scheduling ones as the notifier."""
    return matcher_engine


@pytest.fixture
def deps(notifier_engine: AsyncEngine, settings: Settings) -> NotifierDeps:
    return NotifierDeps(engine=notifier_engine, clock=Clock(MATCHED_AT),
                        child_key_secret=settings.child_key_secret.get_secret_value())


def school_body(la_code: str, **changes: Any) -> dict[str, Any]:
    return {"name": "Oak Road Primary", "la_code": la_code, "participates": True,
            "day_starts_at": "08:45",
            "contacts": [{"role": "dsl", "name": "Dana Lead", "email": "dsl@oak.sch.uk"}],
            } | changes


async def add_school(engine: AsyncEngine, **changes: Any) -> tuple[str, str]:
    urn, la_code = next_urn(), next_la()
    body = SchoolIn.model_validate(school_body(la_code, **changes))
    await registry.put_school(urn, body=body, uow=UnitOfWork(engine), now=MATCHED_AT,
                              topic_prefix=PREFIX)
    return urn, la_code


async def put_calendar(api: httpx.AsyncClient, urn: str, text: str,
                       headers: dict[str, str]) -> httpx.Response:
    return await api.put(f"/v1/schools/{urn}/calendar", content=text.encode(),
                         headers=headers | {"Content-Type": "text/csv"})


# --- the registry ---------------------------------------------------------------------------


async def test_cli_calendar_import_replaces_each_named_schools_overrides(
    tmp_path: Path, engine: AsyncEngine, cli_env: None, capsys: Capsys
) -> None:
    first, _ = await add_school(engine)
    second, _ = await add_school(engine)
    path = tmp_path / "calendar.csv"
    path.write_text(calendar_csv((first, "2026-12-21", "closed"), (first, "2026-12-22", "closed"),
                                 (second, "2026-12-19", "open")))
    assert await asyncio.to_thread(run_cli, "calendar", "import", str(path)) == 0
    assert json.loads(capsys.readouterr().out) == {"days": 3, "replaced": 0, "schools": 2}
    assert await overrides(engine, first) == [(date(2026, 12, 21), "closed"),
                                              (date(2026, 12, 22), "closed")]

    path.write_text(calendar_csv((first, "2027-02-15", "closed")))
    assert await asyncio.to_thread(run_cli, "calendar", "import", str(path)) == 0
    assert json.loads(capsys.readouterr().out) == {"days": 1, "replaced": 2, "schools": 1}
    assert await overrides(engine, first) == [(date(2027, 2, 15), "closed")]
    assert await overrides(engine, second) == [(date(2026, 12, 19), "open")]  # not named: kept


async def test_cli_bad_calendar_rows_are_numbered_and_nothing_changes(
    tmp_path: Path, engine: AsyncEngine, cli_env: None, capsys: Capsys
) -> None:
    urn, _ = await add_school(engine)
    path = tmp_path / "calendar.csv"
    path.write_text(calendar_csv((urn, "2026-12-21", "closed")))
    assert await asyncio.to_thread(run_cli, "calendar", "import", str(path)) == 0
    capsys.readouterr()
    path.write_text(calendar_csv((urn, "2027-01-04", "closed"), (urn, "2027-13-01", "closed"),
                                 (urn, "2027-01-05", "shut"), ("12ab", "2027-01-06", "open"),
                                 (urn, "2027-01-04", "open")))
    assert await asyncio.to_thread(run_cli, "calendar", "import", str(path)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "daybreak: invalid calendar: 4 problem(s); nothing was imported",
        "daybreak: row 3: date: must be a date as YYYY-MM-DD",
        "daybreak: row 4: kind: must be closed or open",
        "daybreak: row 5: urn: must be a 6 or 7 digit URN",
        "daybreak: row 6: date: listed twice (first on row 2)",
    ]
    assert await overrides(engine, urn) == [(date(2026, 12, 21), "closed")]


async def test_cli_calendar_naming_an_unknown_school_changes_nothing(
    tmp_path: Path, engine: AsyncEngine, cli_env: None, capsys: Capsys
) -> None:
    known, unknown = await add_school(engine), next_urn()
    path = tmp_path / "calendar.csv"
    path.write_text(calendar_csv((known[0], "2027-01-04", "closed"),
                                 (unknown, "2027-01-04", "closed")))
    assert await asyncio.to_thread(run_cli, "calendar", "import", str(path)) == 2
    assert "daybreak: row 3: urn: no school with this URN" in capsys.readouterr().err
    assert await overrides(engine, known[0]) == []


async def test_put_calendar_replaces_one_schools_overrides(
    api: Api, admin: dict[str, str], engine: AsyncEngine
) -> None:
    urn, _ = await add_school(engine)
    good = calendar_csv((urn, "2026-12-21", "closed"), (urn, "2026-12-22", "closed"))
    response = await put_calendar(api, urn, good, admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"urn": urn, "days": 2, "replaced": 0}

    response = await put_calendar(api, urn, calendar_csv((urn, "2027-01-04", "open"),
                                                         (next_urn(), "2027-01-05", "closed")),
                                  admin)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"row": 3, "field": "urn", "message": "must be the school in the URL"}]
    assert len(await overrides(engine, urn)) == 2

    response = await put_calendar(api, urn, calendar_csv((urn, "2027-01-04", "open")), admin)
    assert response.json() == {"urn": urn, "days": 1, "replaced": 2}
    assert await overrides(engine, urn) == [(date(2027, 1, 4), "open")]
    assert (await put_calendar(api, next_urn(), "urn,date,kind\n", admin)).status_code == 404
    assert (await api.put(f"/v1/schools/{urn}/calendar", json={"days": []},
                          headers=admin)).status_code == 415
    assert (await put_calendar(api, urn, "urn,date,kind\n", {})).status_code == 401


async def test_put_school_sets_and_keeps_escalation_minutes(
    api: Api, admin: dict[str, str]
) -> None:
    urn, la_code = next_urn(), next_la()
    response = await api.put(f"/v1/schools/{urn}", headers=admin, json=school_body(la_code))
    assert response.status_code == 201, response.text
    assert (response.json()["deputy_after_minutes"], response.json()["la_after_minutes"]) == (
        60, 120)
    response = await api.put(f"/v1/schools/{urn}", headers=admin, json=school_body(
        la_code, deputy_after_minutes=30, la_after_minutes=90))
    assert (response.json()["deputy_after_minutes"], response.json()["la_after_minutes"]) == (
        30, 90)
    response = await api.put(f"/v1/schools/{urn}", headers=admin, json=school_body(la_code))
    assert response.json()["la_after_minutes"] == 90  # omitted: kept
    for bad in ({"deputy_after_minutes": 100}, {"deputy_after_minutes": 20,
                                                "la_after_minutes": 10},
                {"la_after_minutes": 0}):
        response = await api.put(f"/v1/schools/{urn}", headers=admin,
                                 json=school_body(la_code, **bad))
        assert response.status_code == 422, bad


# --- the notifier ---------------------------------------------------------------------------


def matched(urn: str, la_code: str, incident_id: uuid.UUID) -> Any:
    incident = IncidentFacts(incident_id=incident_id, force_code="WMP",
                             occurred_at=datetime(2026, 11, 22, 18, 0, tzinfo=UTC),
                             incident_type="domestic_abuse", summary="Secret summary",
                             disclosure_fields=["occurred_at"])
    child = ChildReport(given_name="Zara", family_name="Okafor", date_of_birth=date(2015, 1, 9),
                        present_at_incident=True)
    return wrap(ChildMatched(
        child_id=uuid.uuid5(incident_id, "0"), child_index=0, incident=incident, child=child,
        decided_by="engine", schools=[SchoolMatch(urn=urn, la_code=la_code, score=30)],
        matched_at=MATCHED_AT))


async def notify(engine: AsyncEngine, deps: NotifierDeps, urn: str, la_code: str
                 ) -> dict[str, Any]:
    incident_id = uuid.uuid4()
    await deliver_registry(engine, deps.engine, topic_prefix=PREFIX)
    await on_child_matched(matched(urn, la_code, incident_id), deps=deps)
    async with deps.engine.connect() as conn:
        rows = (await conn.execute(select(notifications).where(
            notifications.c.incident_id == incident_id))).all()
        kids = (await conn.execute(select(notification_children).where(
            notification_children.c.notification_id.in_([r.id for r in rows])))).all()
    by_id = {kid.notification_id: kid for kid in kids}
    return {row.recipient_key: (row, by_id[row.id]) for row in rows}


async def test_a_closed_day_tomorrow_pushes_the_day_after(
    engine: AsyncEngine, deps: NotifierDeps
) -> None:
    urn, la_code = await add_school(engine)
    await registry.import_calendar(urn, calendar_csv((urn, str(MONDAY), "closed")).encode(),
                                   uow=UnitOfWork(engine), now=MATCHED_AT, topic_prefix=PREFIX)
    found = await notify(engine, deps, urn, la_code)
    assert list(found) == [f"school:{urn}"]  # a lone INSET day is no holiday: no LA
    row, _ = found[f"school:{urn}"]
    assert (row.recipient_role, row.push_at) == ("dsl", at_seven(TUESDAY))
    assert row.deputy_at == datetime(2026, 11, 24, 9, 45, tzinfo=UTC)


async def test_a_holiday_without_cover_holds_the_dsl_and_tells_the_la(
    engine: AsyncEngine, deps: NotifierDeps
) -> None:
    urn, la_code = await add_school(engine)
    await registry.import_calendar(
        urn, calendar_csv((urn, str(MONDAY), "closed"), (urn, str(TUESDAY), "closed")).encode(),
        uow=UnitOfWork(engine), now=MATCHED_AT, topic_prefix=PREFIX)
    found = await notify(engine, deps, urn, la_code)
    school_row, _ = found[f"school:{urn}"]
    assert (school_row.recipient_role, school_row.push_at) == ("dsl", at_seven(WEDNESDAY))
    la_row, la_child = found[f"la:{la_code}"]
    assert (la_row.school_urn, la_row.la_code, la_row.recipient_role) == (
        None, la_code, "safeguarding")
    assert la_row.push_at == at_seven(MONDAY)  # the next working day's window
    assert la_row.deputy_at is None and la_child.unmatched_reason == "school_holiday"


async def test_a_holiday_with_cover_goes_to_cover_and_the_la_now_and_the_dsl_on_return(
    engine: AsyncEngine, deps: NotifierDeps
) -> None:
    contacts = [{"role": "dsl", "name": "D", "email": "d@oak.sch.uk"},
                {"role": "holiday_cover", "name": "H", "email": "h@oak.sch.uk"}]
    urn, la_code = await add_school(engine, contacts=contacts)
    await registry.import_calendar(
        urn, calendar_csv((urn, str(MONDAY), "closed"), (urn, str(TUESDAY), "closed")).encode(),
        uow=UnitOfWork(engine), now=MATCHED_AT, topic_prefix=PREFIX)
    found = await notify(engine, deps, urn, la_code)
    assert sorted(found) == sorted([f"school:{urn}", f"school:{urn}:return", f"la:{la_code}"])
    row, _ = found[f"school:{urn}"]
    assert (row.recipient_role, row.push_at) == ("holiday_cover", at_seven(MONDAY))
    la_row, la_child = found[f"la:{la_code}"]
    assert (la_row.push_at, la_child.unmatched_reason) == (at_seven(MONDAY), "school_holiday")
    back, _ = found[f"school:{urn}:return"]  # the school is back on Wednesday
    assert (back.recipient_role, back.push_at) == ("dsl", at_seven(WEDNESDAY))


async def test_custom_escalation_minutes_are_respected(
    engine: AsyncEngine, deps: NotifierDeps
) -> None:
    urn, la_code = await add_school(engine, day_starts_at="08:40", deputy_after_minutes=15,
                                    la_after_minutes=45)
    row, _ = (await notify(engine, deps, urn, la_code))[f"school:{urn}"]
    assert row.push_at == at_seven(MONDAY)
    assert row.deputy_at == datetime(2026, 11, 23, 8, 55, tzinfo=UTC)
    assert row.la_at == datetime(2026, 11, 23, 9, 25, tzinfo=UTC)
