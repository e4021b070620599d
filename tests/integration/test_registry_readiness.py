"""The registry's safety-net settings and readiness, against the real database: LA settings on
the API and on registry.v1, every configuration that would leave a child with nobody told (per
entity, at /v1/admin/readiness and as a gauge), GIAS schools not ready until contacts and term
dates are set, calendars checked ahead of the registry's (pinned) clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas import topics
from schemas.directory import LocalAuthorityChanged
from services.common.app import create_app
from services.common.context import AppContext
from services.common.db import UnitOfWork
from services.common.settings import Settings
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.matcher.readiness import (
    CODES,
    LaFacts,
    SchoolFacts,
    la_problems,
    registry_problems,
    school_problems,
)
from services.matcher.registry import import_gias
from services.matcher.registry_api import router as registry_router
from tests.support.api import issuer_for, metrics_auth, running
from tests.support.clock import Clock
from tests.support.ids import next_force, next_la, next_urn
from tests.support.incidents import register_force
from tests.support.registry import (
    PREFIX,
    la_body,
    ready_school_body,
    school_body,
    seed,
    staged_by_matcher,
)
from tests.support.registry_files import gias_file, holidays_csv, la_calendar_csv
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
SAFEGUARDING_ONLY = [{"role": "safeguarding", "name": "LADO", "email": "lado@la.example"}]
NOW = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)  # the Christmas holiday is 20 days away
COVER = {"role": "holiday_cover", "name": "Holly Cover", "email": "cover@oak.sch.uk"}


@pytest.fixture
def registry_clock() -> Clock:
    return Clock(NOW)


def codes(view: dict[str, Any]) -> list[str]:
    return [p["code"] for p in view["problems"]]


async def put_la(api: httpx.AsyncClient, admin: dict[str, str], la: str, **body: Any
                 ) -> httpx.Response:
    return await api.put(f"/v1/local-authorities/{la}", json=la_body(**body), headers=admin)


async def give_term_dates(api: httpx.AsyncClient, admin: dict[str, str], la: str) -> None:
    resp = await api.put(f"/v1/local-authorities/{la}/calendar", content=holidays_csv().encode(),
                         headers=admin | {"Content-Type": "text/csv"})
    assert resp.status_code == 200, resp.text


# --- LA settings ---------------------------------------------------------------------------

async def test_la_settings_default_are_kept_when_omitted_and_are_announced(
    registry: httpx.AsyncClient, admin: dict[str, str], matcher_engine: AsyncEngine,
    settings: Settings,
) -> None:
    la = next_la()
    created = await put_la(registry, admin, la)
    assert created.status_code == 201, created.text
    assert {k: created.json()[k] for k in ("escalation_before_minutes", "attendance_prompt_at",
                                           "attendance_la_at")} == {
        "escalation_before_minutes": 30, "attendance_prompt_at": "10:00",
        "attendance_la_at": "12:00"}
    changed = await put_la(registry, admin, la, escalation_before_minutes=45,
                           attendance_prompt_at="09:30", attendance_la_at="11:15")
    assert changed.status_code == 200, changed.text
    kept = await put_la(registry, admin, la, name="Dudley MBC")  # settings omitted: kept
    got = (await registry.get(f"/v1/local-authorities/{la}", headers=admin)).json()
    for view in (kept.json(), got):
        assert (view["escalation_before_minutes"], view["attendance_prompt_at"],
                view["attendance_la_at"]) == (45, "09:30", "11:15")
    assert [c["role"] for c in got["contacts"]] == ["safeguarding", "review", "duty_manager"]

    announced = [e.payload for e in await staged_by_matcher(matcher_engine, settings,
                                                            topics.REGISTRY)
                 if isinstance(e.payload, LocalAuthorityChanged) and e.payload.la_code == la]
    assert [(a.escalation_before_minutes, a.attendance_prompt_at, a.attendance_la_at)
            for a in announced] == [(30, time(10), time(12)), (45, time(9, 30), time(11, 15)),
                                    (45, time(9, 30), time(11, 15))]


@pytest.mark.parametrize(("changes", "field"), [
    pytest.param({"escalation_before_minutes": 0}, "escalation_before_minutes", id="zero"),
    pytest.param({"escalation_before_minutes": 721}, "escalation_before_minutes",
                 id="over-twelve-hours"),
    pytest.param({"attendance_prompt_at": "9:30"}, "attendance_prompt_at", id="not-hh-mm"),
    pytest.param({"attendance_la_at": "24:00"}, "attendance_la_at", id="no-such-time"),
    pytest.param({"attendance_prompt_at": "12:00", "attendance_la_at": "12:00"},
                 "attendance_prompt_at", id="prompt-not-before-la"),
    pytest.param({"contacts": [{"role": "mayor", "name": "M", "email": "m@la.example"}]},
                 "contacts[0].role", id="unknown-contact-role"),
])
async def test_invalid_la_settings_are_422_naming_the_field(
    registry: httpx.AsyncClient, admin: dict[str, str], changes: dict[str, Any], field: str,
) -> None:
    resp = await put_la(registry, admin, next_la(), **changes)
    assert resp.status_code == 422, resp.text
    assert field in [e["field"] for e in resp.json()["errors"]]


async def test_a_prompt_time_after_the_stored_la_time_is_refused(
    registry: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    la = next_la()
    await put_la(registry, admin, la, attendance_la_at="11:00")
    resp = await put_la(registry, admin, la, attendance_prompt_at="11:30")
    assert resp.status_code == 422
    assert resp.json()["errors"] == [{"field": "attendance_prompt_at",
                                      "message": "must be before attendance_la_at"}]


# --- readiness per entity ------------------------------------------------------------------

async def test_an_la_is_ready_only_with_safeguarding_and_duty_manager_contacts(
    registry: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    la = next_la()
    bare = (await put_la(registry, admin, la, contacts=[])).json()
    assert bare["ready"] is False
    assert codes(bare) == ["la_no_safeguarding_contact", "la_no_duty_manager_contact"]
    assert all(p["subject"] == f"la:{la}" for p in bare["problems"])
    half = (await put_la(registry, admin, la, contacts=SAFEGUARDING_ONLY)).json()
    assert codes(half) == ["la_no_duty_manager_contact"]
    ready = (await put_la(registry, admin, la)).json()
    assert (ready["ready"], ready["problems"]) == (True, [])


async def test_a_participating_school_needs_a_dsl_and_a_deputy(
    registry: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    la, urn = next_la(), next_urn()
    await put_la(registry, admin, la)
    await give_term_dates(registry, admin, la)
    bare = await registry.put(f"/v1/schools/{urn}", headers=admin,
                              json=school_body(la, contacts=[]))
    assert codes(bare.json()) == ["school_no_dsl_contact", "school_no_deputy_dsl_contact"]
    dsl_only = await registry.put(f"/v1/schools/{urn}", headers=admin, json=school_body(la))
    assert codes(dsl_only.json()) == ["school_no_deputy_dsl_contact"]
    ready = await registry.put(f"/v1/schools/{urn}", headers=admin, json=ready_school_body(la))
    got = (await registry.get(f"/v1/schools/{urn}", headers=admin)).json()
    for view in (ready.json(), got):
        assert (view["ready"], view["problems"]) == (True, [])
    # a school that does not take part, or is closed, needs no contacts of its own
    for changes in ({"participates": False}, {"status": "closed"}):
        resp = await registry.put(f"/v1/schools/{urn}", headers=admin,
                                  json=school_body(la, contacts=[], **changes))
        assert resp.json()["ready"] is True, changes


async def test_a_school_needs_holidays_in_its_calendar_and_cover_before_them(
    registry: httpx.AsyncClient, admin: dict[str, str], registry_clock: Clock
) -> None:
    la, urn = next_la(), next_urn()
    await put_la(registry, admin, la)
    bare = await registry.put(f"/v1/schools/{urn}", headers=admin, json=ready_school_body(la))
    assert codes(bare.json()) == ["school_calendar_bare_default"]
    assert "no school holiday in the next 12 months" in bare.json()["problems"][0]["message"]
    await give_term_dates(registry, admin, la)
    assert (await registry.get(f"/v1/schools/{urn}", headers=admin)).json()["ready"] is True
    registry_clock.now = NOW + timedelta(days=7)  # the holiday is 13 days away
    near = (await registry.get(f"/v1/schools/{urn}", headers=admin)).json()
    assert codes(near) == ["school_no_holiday_cover"]
    assert "its holiday begins Monday 21 December" in near["problems"][0]["message"]
    # writes stay at NOW: an updated_at ahead of the real time would hide later edits from
    # the matcher's registry snapshot for the rest of the session
    registry_clock.now = NOW
    covered = ready_school_body(la)
    covered["contacts"].append(COVER)
    await registry.put(f"/v1/schools/{urn}", headers=admin, json=covered)
    registry_clock.now = NOW + timedelta(days=7)
    assert (await registry.get(f"/v1/schools/{urn}", headers=admin)).json()["ready"] is True


async def test_from_june_an_la_whose_schools_follow_it_needs_next_years_term_dates(
    registry: httpx.AsyncClient, admin: dict[str, str], registry_clock: Clock
) -> None:
    known, stale, unfollowed = next_la(), next_la(), next_la()
    for la in (known, stale, unfollowed):
        await put_la(registry, admin, la)
    await give_term_dates(registry, admin, known)  # it knows October 2027 already
    only_this_year = la_calendar_csv(("2026-12-21", "closed"), ("2026-12-22", "closed"))
    for la in (stale, unfollowed):
        await registry.put(f"/v1/local-authorities/{la}/calendar", headers=admin | {
            "Content-Type": "text/csv"}, content=only_this_year.encode())
    for la in (known, stale):
        await registry.put(f"/v1/schools/{next_urn()}", headers=admin, json=ready_school_body(la))
    registry_clock.now = datetime(2027, 5, 31, 12, 0, tzinfo=UTC)
    views = {la: (await registry.get(f"/v1/local-authorities/{la}", headers=admin)).json()
             for la in (known, stale, unfollowed)}
    assert all(v["ready"] for v in views.values())
    registry_clock.now = datetime(2027, 6, 1, 7, 0, tzinfo=UTC)
    views = {la: (await registry.get(f"/v1/local-authorities/{la}", headers=admin)).json()
             for la in (known, stale, unfollowed)}
    assert {la: codes(v) for la, v in views.items()} == {
        known: [], stale: ["la_no_term_dates_next_year"], unfollowed: []}
    assert "no term dates for 2027-28" in views[stale]["problems"][0]["message"]


async def test_a_school_whose_la_is_not_registered_is_not_ready(settings: Settings,
                                                                 registry: httpx.AsyncClient,
                                                                 admin: dict[str, str]) -> None:
    urn, missing = next_urn(), next_la()
    await seed(settings, las=[], pupil_rows=[], school_rows=[{
        "urn": urn, "name": "Orphan School", "la_code": missing, "participates": False}])
    view = (await registry.get(f"/v1/schools/{urn}", headers=admin)).json()
    assert view["ready"] is False
    [problem] = view["problems"]
    assert problem["code"] == "school_la_missing" and missing in problem["message"]


async def test_gias_schools_are_not_ready_until_their_contacts_are_set(
    registry: httpx.AsyncClient, admin: dict[str, str], matcher_engine: AsyncEngine
) -> None:
    la, urn = next_la(), next_urn()
    await import_gias(gias_file(f"{urn},{la},Fresh Primary,Open,Primary,4,11,DY1 2AB,x"),
                      uow=UnitOfWork(matcher_engine), now=datetime.now(UTC), topic_prefix=PREFIX)
    school = (await registry.get(f"/v1/schools/{urn}", headers=admin)).json()
    assert school["participates"] is True and school["ready"] is False
    assert codes(school) == ["school_no_dsl_contact", "school_no_deputy_dsl_contact",
                             "school_calendar_bare_default"]
    created_la = (await registry.get(f"/v1/local-authorities/{la}", headers=admin)).json()
    assert codes(created_la) == ["la_no_safeguarding_contact", "la_no_duty_manager_contact"]
    await registry.put(f"/v1/schools/{urn}", headers=admin, json=ready_school_body(la))
    await put_la(registry, admin, la)
    await give_term_dates(registry, admin, la)
    for path in (f"/v1/schools/{urn}", f"/v1/local-authorities/{la}"):
        assert (await registry.get(path, headers=admin)).json()["ready"] is True


# --- the whole registry ---------------------------------------------------------------------

async def test_admin_readiness_lists_every_problem_once_in_a_stable_order(
    registry: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    la_a, la_b = sorted((next_la(), next_la()))
    urn_a, urn_b = sorted((next_urn(), next_urn()))
    await put_la(registry, admin, la_b, contacts=SAFEGUARDING_ONLY)
    await put_la(registry, admin, la_a, contacts=[])
    await give_term_dates(registry, admin, la_a)  # urn_b's LA; urn_a's has none
    await registry.put(f"/v1/schools/{urn_b}", headers=admin, json=school_body(la_a))
    await registry.put(f"/v1/schools/{urn_a}", headers=admin,
                       json=school_body(la_b, contacts=[]))
    mine = {f"la:{la_a}", f"la:{la_b}", f"school:{urn_a}", f"school:{urn_b}"}
    answers = [await registry.get("/v1/admin/readiness", headers=admin) for _ in range(2)]
    assert answers[0].status_code == 200 and answers[0].json() == answers[1].json()
    body = answers[0].json()
    assert body["ready"] is False
    assert [(p["subject"], p["code"]) for p in body["problems"] if p["subject"] in mine] == [
        (f"la:{la_a}", "la_no_safeguarding_contact"),
        (f"la:{la_a}", "la_no_duty_manager_contact"),
        (f"la:{la_b}", "la_no_duty_manager_contact"),
        (f"school:{urn_a}", "school_no_dsl_contact"),
        (f"school:{urn_a}", "school_no_deputy_dsl_contact"),
        (f"school:{urn_a}", "school_calendar_bare_default"),
        (f"school:{urn_b}", "school_no_deputy_dsl_contact"),
    ]
    subjects = [p["subject"] for p in body["problems"]]
    assert subjects == sorted(subjects, key=lambda s: (not s.startswith("la:"), s))
    officer = bearer(person("la_officer", las=[la_a]))
    assert (await registry.get("/v1/admin/readiness", headers=officer)).status_code == 403


async def test_the_gauge_counts_what_readiness_lists(settings: Settings,
                                                     matcher_engine: AsyncEngine) -> None:
    await seed(settings, las=[next_la()], pupil_rows=[], school_rows=[])  # a bare LA at least
    async with matcher_engine.connect() as conn:
        listed = await registry_problems(conn, now=datetime.now(UTC))
    app = build_matcher(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        text = (await client.get("/metrics", headers=metrics_auth())).text
    samples = {s.labels["code"]: s.value for f in text_string_to_metric_families(text)
               for s in f.samples if s.name == "daybreak_readiness_problems"}
    assert set(samples) == set(CODES)
    assert samples == {code: sum(p.code == code for p in listed) for code in CODES}
    assert samples["la_no_duty_manager_contact"] >= 1


def test_problems_are_one_line_and_name_no_one() -> None:
    la = LaFacts("330", "Dudley\nMBC\u2028", frozenset({"review"}), followed=True)
    school = SchoolFacts("100001", "Oak\r\nRoad", "330", True, "open", frozenset(), False)
    june = date(2027, 6, 1)
    lines = [p.line() for p in la_problems(la, today=june) + school_problems(school, today=june)]
    assert len(lines) == 7 and all("\n" not in line and "\r" not in line for line in lines)
    assert lines[0] == ("la:330: Dudley MBC has no safeguarding contact: children on no roll "
                        "and items addressed to the LA reach nobody [la_no_safeguarding_contact]")


async def test_one_readiness_list_holds_the_forces_from_ingest_and_their_default_las(
    registry_settings: Settings, settings: Settings, matcher_engine: AsyncEngine,
    registry_clock: Clock, admin: dict[str, str],
) -> None:
    unknown_la, no_default, astray = next_la(), next_force("RDN"), next_force("RDA")
    await register_force(settings, no_default, la_code=None)
    await register_force(settings, astray, la_code=unknown_la)

    async def readiness(ingest: httpx.AsyncClient) -> dict[str, Any]:
        ctx = AppContext(settings=registry_settings, engine=matcher_engine,
                         registry=CollectorRegistry(), clock=registry_clock, ingest_api=ingest)
        app = create_app(title="registry under test", service="matcher", ctx=ctx)
        app.include_router(registry_router)
        async with running(app) as client:
            answer = await client.get("/v1/admin/readiness", headers=admin)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async with running(build_ingest(settings, issuer=issuer_for(settings))) as ingest:
        body = await readiness(ingest)
    found = [(p["subject"], p["code"]) for p in body["problems"]]
    assert (f"force:{no_default}", "force_no_default_la") in found
    assert (f"force:{astray}", "force_default_la_unknown") in found
    assert body["ready"] is False
    # ingest away: the forces are not silently taken as ready
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as nowhere:
        away = await readiness(nowhere)
    assert ("service:ingest", "forces_unchecked") in [
        (p["subject"], p["code"]) for p in away["problems"]]
