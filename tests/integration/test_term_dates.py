"""Term dates through the registry's API and CLI: an LA's (.ics or CSV) for its schools
without their own, a school's own (.ics), overrides on top; each school's effective calendar
on registry.v1, in the matcher's snapshot, and the holiday path in the notifier."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas import topics
from schemas.directory import SchoolCalendarChanged
from services.common.db import UnitOfWork
from services.common.settings import Settings
from services.demo import term_dates
from services.matcher.directory import announce_everything
from services.matcher.index import RosterCache
from services.matcher.models import schools
from services.matcher.registry import import_gias
from services.notifier.handlers import NotifierDeps, on_child_matched
from services.notifier.models import notification_children, notifications
from tests.support.clock import Clock
from tests.support.directory import deliver_registry
from tests.support.ids import next_la, next_urn
from tests.support.notifier import School, matched
from tests.support.registry import la_body, overrides, ready_school_body, run_cli, staged_by_matcher
from tests.support.registry_files import (
    academy_term_dates,
    all_day,
    calendar_csv,
    gias_file,
    ics,
    la_calendar_csv,
)

pytestmark = pytest.mark.integration
Capsys = pytest.CaptureFixture[str]
Api = httpx.AsyncClient
NOW = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
PREFIX = "term-dates."  # the registry.v1 events this module's API stages (no relay publishes them)
XMAS = la_calendar_csv(*((f"2026-12-{d}", "closed") for d in (21, 22, 23, 24, 29, 30, 31)),
                       ("2027-01-01", "closed"))
COVER = {"role": "holiday_cover", "name": "Holly Cover", "email": "cover@oak.sch.uk"}


@pytest.fixture
def registry_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"topic_prefix": PREFIX})


@pytest.fixture
def registry_clock() -> Clock:
    return Clock(NOW)


def body(data: bytes | str, media_type: str, headers: dict[str, str]) -> dict[str, Any]:
    content = data.encode() if isinstance(data, str) else data
    return {"content": content, "headers": headers | {"Content-Type": media_type}}


async def put_la_calendar(registry: Api, la: str, data: bytes | str, headers: dict[str, str],
                          media_type: str = "text/csv") -> httpx.Response:
    return await registry.put(f"/v1/local-authorities/{la}/calendar",
                         **body(data, media_type, headers))


async def put_school_calendar(registry: Api, urn: str, data: bytes | str, headers: dict[str, str],
                              media_type: str = "text/calendar") -> httpx.Response:
    return await registry.put(f"/v1/schools/{urn}/calendar", **body(data, media_type, headers))


async def world(registry: Api, admin: dict[str, str], *contacts: dict[str, str]
                ) -> tuple[str, list[str]]:
    """A ready LA and two ready schools in it (with the extra contacts)."""
    la, urns = next_la(), sorted([next_urn(), next_urn()])
    assert (await registry.put(f"/v1/local-authorities/{la}", json=la_body(),
                          headers=admin)).status_code == 201
    for urn in urns:
        school = ready_school_body(la)
        school["contacts"] += list(contacts)
        assert (await registry.put(f"/v1/schools/{urn}", json=school, headers=admin)
                ).status_code == 201
    return la, urns


async def announced(engine: AsyncEngine, settings: Settings, urn: str
                    ) -> list[list[tuple[date, str]]]:
    """Every calendar staged for the school on registry.v1, oldest first."""
    return [[(d.day, d.kind) for d in e.payload.days]
            for e in await staged_by_matcher(engine, settings, topics.REGISTRY)
            if isinstance(e.payload, SchoolCalendarChanged) and e.payload.urn == urn]


def xmas_days() -> list[tuple[date, str]]:
    return [(date(2026, 12, d), "closed") for d in (21, 22, 23, 24, 29, 30, 31)] + [
        (date(2027, 1, 1), "closed")]


# --- the API --------------------------------------------------------------------------------

async def test_an_las_term_dates_become_its_schools_calendars(
    registry: Api, admin: dict[str, str], matcher_engine: AsyncEngine, registry_settings: Settings
) -> None:
    la, (follower, academy) = await world(registry, admin)
    own = await put_school_calendar(registry, academy, academy_term_dates(), admin)
    assert own.status_code == 200, own.text
    resp = await put_la_calendar(registry, la, XMAS, admin)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"la_code": la, "days": 8, "replaced": 0, "schools_affected": 1}
    got = (await registry.get(f"/v1/local-authorities/{la}/calendar", headers=admin)).json()
    assert got["la_code"] == la and got["schools_following"] == 1
    assert got["days"][0] == {"day": "2026-12-21", "kind": "closed"} and len(got["days"]) == 8
    assert (await announced(matcher_engine, registry_settings, follower))[-1] == xmas_days()
    academy_calendars = await announced(matcher_engine, registry_settings, academy)
    assert len(academy_calendars) == 2  # created, then its own term dates: the LA's is not its

    resp = await put_la_calendar(registry, la.lower(), term_dates(), admin, "text/calendar")
    assert resp.json() == {"la_code": la, "days": 180, "replaced": 8, "schools_affected": 1}
    latest = (await announced(matcher_engine, registry_settings, follower))[-1]
    assert len(latest) == 180 and (date(2027, 8, 12), "closed") in latest
    views = {urn: (await registry.get(f"/v1/schools/{urn}/calendar", headers=admin)).json()
             for urn in (follower, academy)}
    assert (views[follower]["term_dates_of"], len(views[follower]["days"])) == ("la", 180)
    assert views[academy]["term_dates_of"] == "school"
    assert {"day": "2026-12-17", "kind": "closed"} in views[academy]["days"]


async def test_a_bad_file_is_422_naming_each_row_or_event_and_changes_nothing(
    registry: Api, admin: dict[str, str]
) -> None:
    la, _ = await world(registry, admin)
    assert (await put_la_calendar(registry, la, XMAS, admin)).status_code == 200
    bad_csv = la_calendar_csv(("2027-02-15", "closed"), ("2027-02-30", "closed"),
                              ("2027-02-16", "shut"), ("2027-02-15", "open"))
    resp = await put_la_calendar(registry, la, bad_csv, admin)
    assert resp.status_code == 422
    assert resp.json()["errors"] == [
        {"row": 3, "field": "date", "message": "must be a date as YYYY-MM-DD"},
        {"row": 4, "field": "kind", "message": "must be closed or open"},
        {"row": 5, "field": "date", "message": "listed twice (first on row 2)"}]
    bad_ics = ics(all_day("Spring term", "20270104", "20270327"),
                  all_day("Sports day", "20270610", "20270611"),
                  "SUMMARY:INSET day\r\nDTSTART:20270610T000000\r\nDTEND:20270611T000000\r\n")
    resp = await put_la_calendar(registry, la, bad_ics, admin, "text/calendar")
    assert resp.status_code == 422 and resp.json()["title"] == "Invalid iCalendar file"
    messages = [e["message"] for e in resp.json()["errors"]]
    assert messages == [
        "event 'INSET day': a time without a time zone (floating time) is ambiguous"]
    resp = await put_la_calendar(registry, la, ics(all_day("Sports day", "20270610", "20270611")),
                                 admin, "text/calendar")
    assert [e["message"] for e in resp.json()["errors"]] == [
        "event 'Sports day' on 2027-06-10: its name says neither holiday, term nor INSET day"]
    resp = await put_la_calendar(registry, la, XMAS, admin, "text/calendar")  # CSV, said .ics
    assert resp.status_code == 422
    got = (await registry.get(f"/v1/local-authorities/{la}/calendar", headers=admin)).json()
    assert len(got["days"]) == 8
    assert (await put_la_calendar(registry, next_la(), XMAS, admin)).status_code == 404
    assert (await registry.get(f"/v1/local-authorities/{next_la()}/calendar", headers=admin)
            ).status_code == 404
    assert (await put_la_calendar(registry, la, XMAS, admin, "application/json")).status_code == 415
    assert (await put_la_calendar(registry, la, XMAS, {})).status_code == 401


async def test_a_schools_own_term_dates_replace_its_las_and_its_overrides_stay_on_top(
    registry: Api, admin: dict[str, str], matcher_engine: AsyncEngine, registry_settings: Settings
) -> None:
    la, (academy, _) = await world(registry, admin)
    await put_la_calendar(registry, la, XMAS, admin)
    override = calendar_csv((academy, "2026-12-17", "open"), (academy, "2027-02-01", "closed"))
    assert (await put_school_calendar(registry, academy, override, admin, "text/csv")).json() == {
        "urn": academy, "days": 2, "replaced": 0}
    assert (await announced(matcher_engine, registry_settings, academy))[-1] == sorted(
        [*xmas_days(), (date(2026, 12, 17), "open"), (date(2027, 2, 1), "closed")])

    resp = await put_school_calendar(registry, academy, academy_term_dates(), admin)
    assert resp.status_code == 200 and resp.json()["replaced"] == 0
    latest = dict((await announced(matcher_engine, registry_settings, academy))[-1])
    assert latest[date(2026, 12, 17)] == "open"  # the override wins on its day
    assert latest[date(2026, 12, 18)] == "closed" and date(2027, 1, 4) in latest  # its own
    assert latest[date(2027, 2, 1)] == "closed"
    assert len(await overrides(matcher_engine, academy)) == 2
    assert len(await overrides(matcher_engine, academy, "term")) == resp.json()["days"]

    count = len(await announced(matcher_engine, registry_settings, academy))
    await put_la_calendar(registry, la, XMAS, admin)  # the LA's dates are not the academy's
    assert len(await announced(matcher_engine, registry_settings, academy)) == count

    dropped = await registry.delete(f"/v1/schools/{academy}/calendar/term-dates", headers=admin)
    assert dropped.json() == {"urn": academy, "days": 0, "replaced": resp.json()["days"]}
    assert (await announced(matcher_engine, registry_settings, academy))[-1] == sorted(
        [*xmas_days(), (date(2026, 12, 17), "open"), (date(2027, 2, 1), "closed")])
    assert (await put_school_calendar(registry, next_urn(), academy_term_dates(), admin)
            ).status_code == 404


async def test_a_school_that_moves_la_takes_its_new_las_term_dates(
    registry: Api, admin: dict[str, str], matcher_engine: AsyncEngine, registry_settings: Settings
) -> None:
    _, (urn, _) = await world(registry, admin)
    second, _ = await world(registry, admin)
    await put_la_calendar(registry, second, XMAS, admin)
    assert (await announced(matcher_engine, registry_settings, urn))[-1] == []
    await registry.put(f"/v1/schools/{urn}", json=ready_school_body(second), headers=admin)
    assert (await announced(matcher_engine, registry_settings, urn))[-1] == xmas_days()
    count = len(await announced(matcher_engine, registry_settings, urn))
    await registry.put(f"/v1/schools/{urn}", json=ready_school_body(second), headers=admin)
    assert len(await announced(matcher_engine, registry_settings, urn)) == count  # not moved


async def test_a_gias_import_announces_the_calendars_it_changes(
    registry: Api, admin: dict[str, str], matcher_engine: AsyncEngine,
    registry_settings: Settings,
) -> None:
    bare, (moved, _) = await world(registry, admin)
    dated, _ = await world(registry, admin)
    await put_la_calendar(registry, dated, XMAS, admin)
    fresh, fresh_bare = next_urn(), next_urn()
    await import_gias(gias_file(*(f"{urn},{la},School {urn},Open,Primary,4,11,DY1 2AB,x"
                                  for urn, la in ((moved, dated), (fresh, dated),
                                                  (fresh_bare, bare)))),
                      uow=UnitOfWork(matcher_engine), now=NOW, topic_prefix=PREFIX)
    assert (await announced(matcher_engine, registry_settings, moved))[-1] == xmas_days()
    assert await announced(matcher_engine, registry_settings, fresh) == [xmas_days()]
    # new in an LA without term dates: the notifier's copy holds the default already
    assert await announced(matcher_engine, registry_settings, fresh_bare) == []


async def test_republish_and_the_matchers_snapshot_use_the_effective_calendar(
    registry: Api, admin: dict[str, str], matcher_engine: AsyncEngine, registry_settings: Settings,
    registry_clock: Clock,
) -> None:
    la, (follower, academy) = await world(registry, admin)
    await put_school_calendar(registry, academy, academy_term_dates(), admin)
    registry_clock.now = NOW + timedelta(hours=1)
    await put_la_calendar(registry, la, XMAS, admin)
    # the snapshot notices a calendar change by its schools' updated_at
    async with matcher_engine.connect() as conn:
        touched = dict((await conn.execute(select(schools.c.urn, schools.c.updated_at).where(
            schools.c.urn.in_([follower, academy])))).all())
    assert touched == {follower: NOW + timedelta(hours=1), academy: NOW}
    snapshot = (await RosterCache(matcher_engine).get()).schools
    assert snapshot[follower].calendar.is_holiday(date(2026, 12, 22))
    assert snapshot[academy].calendar.is_holiday(date(2026, 12, 17))
    assert snapshot[academy].calendar.is_school_day(date(2027, 1, 4)) is False
    async with UnitOfWork(matcher_engine) as uow:
        await announce_everything(uow.conn, topic_prefix=PREFIX, now=NOW)
        await uow.commit()
    republished = await announced(matcher_engine, registry_settings, follower)
    assert republished[-1] == republished[-2] == xmas_days()


# --- the holiday path, end to end -----------------------------------------------------------

CHRISTMAS_EVE = datetime(2026, 12, 24, 20, 0, tzinfo=UTC)  # Thursday, 8pm in London (GMT)


async def match_in_the_holiday(matcher: AsyncEngine, deps: NotifierDeps, urn: str, la: str
                               ) -> dict[str, tuple[Any, Any]]:
    """Deliver registry.v1 to the notifier's copy, match a child to the school on Christmas
    Eve; its notification rows and their child row, by recipient."""
    await deliver_registry(matcher, deps.engine, topic_prefix=PREFIX)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, School(urn, la, "", "", ""), "Zara",
                                   matched_at=CHRISTMAS_EVE), deps=deps)
    async with deps.engine.connect() as conn:
        rows = (await conn.execute(select(notifications).where(
            notifications.c.incident_id == incident_id))).all()
        kids = {k.notification_id: k for k in (await conn.execute(
            select(notification_children).where(
                notification_children.c.notification_id.in_([r.id for r in rows])))).all()}
    return {row.recipient_key: (row, kids[row.id]) for row in rows}


@pytest.mark.parametrize("source", ["la-csv", "la-ics", "school-ics"])
async def test_a_child_matched_in_the_holidays_reaches_cover_or_the_la_now_and_the_dsl_on_return(
    registry: Api, admin: dict[str, str], matcher_engine: AsyncEngine, notifier_engine: AsyncEngine,
    settings: Settings, source: str,
) -> None:
    la, (covered, uncovered) = await world(registry, admin)
    back = datetime(2027, 1, 5, 7, 0, tzinfo=UTC)  # the demo LA: an INSET day on 4 January
    if source == "la-csv":
        resp = await put_la_calendar(registry, la, XMAS, admin)
        back = datetime(2027, 1, 4, 7, 0, tzinfo=UTC)
    elif source == "la-ics":
        resp = await put_la_calendar(registry, la, term_dates(), admin, "text/calendar")
    else:  # the academy's own: back on 6 January
        for urn in (covered, uncovered):
            resp = await put_school_calendar(registry, urn, academy_term_dates(), admin)
        back = datetime(2027, 1, 6, 7, 0, tzinfo=UTC)
    assert resp.status_code == 200, resp.text
    school = ready_school_body(la)
    school["contacts"].append(COVER)
    await registry.put(f"/v1/schools/{covered}", json=school, headers=admin)
    deps = NotifierDeps(engine=notifier_engine, clock=Clock(CHRISTMAS_EVE),
                        child_key_secret=settings.child_key_secret.get_secret_value())
    after_bank_holidays = datetime(2026, 12, 29, 7, 0, tzinfo=UTC)

    found = await match_in_the_holiday(matcher_engine, deps, covered, la)
    assert sorted(found) == sorted([f"school:{covered}", f"school:{covered}:return",
                                    f"la:{la}"])
    row, _ = found[f"school:{covered}"]
    assert (row.recipient_role, row.push_at) == ("holiday_cover", after_bank_holidays)
    la_row, _ = found[f"la:{la}"]
    assert la_row.push_at == after_bank_holidays  # the LA hears now, beside the cover
    returning, _ = found[f"school:{covered}:return"]
    assert (returning.recipient_role, returning.push_at) == ("dsl", back)

    found = await match_in_the_holiday(matcher_engine, deps, uncovered, la)
    row, _ = found[f"school:{uncovered}"]
    assert (row.recipient_role, row.push_at) == ("dsl", back)
    la_row, la_child = found[f"la:{la}"]
    assert (la_row.recipient_role, la_row.push_at) == ("safeguarding", after_bank_holidays)
    assert la_child.unmatched_reason == "school_holiday"


# --- the CLI --------------------------------------------------------------------------------

async def test_cli_imports_an_las_and_a_schools_term_dates(
    registry: Api, admin: dict[str, str], matcher_engine: AsyncEngine, tmp_path: Path,
    cli_env: None, capsys: Capsys,
) -> None:
    la, (academy, follower) = await world(registry, admin)
    dates, csv_dates = tmp_path / "la.ics", tmp_path / "la.csv"
    dates.write_bytes(term_dates())
    csv_dates.write_text(XMAS)
    own = tmp_path / "academy.txt"  # told by its content, not its name
    own.write_bytes(academy_term_dates())

    def run(*argv: str) -> tuple[int, Any]:
        code = run_cli("calendar", "import", *argv)
        out = capsys.readouterr().out
        return code, json.loads(out) if out else None

    assert await asyncio.to_thread(run, "--la", la.lower(), str(dates)) == (0, {
        "la_code": la, "days": 180, "replaced": 0, "schools_affected": 2})
    assert await asyncio.to_thread(run, "--school", academy, str(own)) == (0, {
        "urn": academy, "days": len(await overrides(matcher_engine, academy, "term")),
        "replaced": 0})
    assert await asyncio.to_thread(run, "--la", la, str(csv_dates)) == (0, {
        "la_code": la, "days": 8, "replaced": 180, "schools_affected": 1})
    override = tmp_path / "override.csv"
    override.write_text(calendar_csv((follower, "2027-01-04", "closed")))
    assert await asyncio.to_thread(run, "--school", follower, str(override)) == (0, {
        "days": 1, "replaced": 0, "schools": 1})
    assert await overrides(matcher_engine, follower) == [(date(2027, 1, 4), "closed")]


async def test_cli_refuses_a_bad_term_dates_file_and_an_unknown_la(
    registry: Api, admin: dict[str, str], tmp_path: Path, cli_env: None, capsys: Capsys,
) -> None:
    la, _ = await world(registry, admin)
    path = tmp_path / "la.ics"
    path.write_bytes(ics(all_day("Autumn term", "20260903", "20261219"),
                         all_day("Sports day", "20270610", "20270611")))
    assert await asyncio.to_thread(run_cli, "calendar", "import", "--la", la, str(path)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [
        "daybreak: invalid icalendar file: 1 problem(s); nothing was imported",
        "daybreak: file: event 'Sports day' on 2027-06-10: its name says neither holiday, "
        "term nor INSET day"]
    path.write_bytes(term_dates())
    assert await asyncio.to_thread(run_cli, "calendar", "import", "--la", next_la(),
                                   str(path)) == 1
    assert capsys.readouterr().err == "daybreak: Not found: No such local authority.\n"
