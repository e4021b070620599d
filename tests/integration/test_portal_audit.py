"""The auditor's pages of the one portal, against the real audit service (in-process, on the
real database, called with the auditor's own token): landing there after sign-in with only
the audit sections, a 403 page for anyone else, searching with an error summary, paging by
the API's cursor, the CSV of the same search, verification in words (intact, then tampered
with), and the subject-access report with its printable page.

The module has its own database: one test rewrites an entry as the owner (and puts it back).
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.audit.chain import EntryDraft
from services.audit.log import Context, append_entries
from services.audit.main import build_app as build_audit
from services.audit.settings import AuditSettings
from services.audit.tree_head import generate_keypair
from services.common.db import service_engine
from services.common.pseudonym import child_key
from services.common.settings import Settings
from services.notifier.handlers import NotifierDeps
from services.notifier.portal_audit import PAGE_SIZE
from tests.support.api import running
from tests.support.audit import tamper
from tests.support.clock import Clock
from tests.support.db import create_test_database, drop_test_database
from tests.support.ids import next_urn
from tests.support.notifier import add_school
from tests.support.portal import csrf_of, new_dsl, new_person, portal_client, sign_in

pytestmark = pytest.mark.integration
BORN = date(2016, 3, 27)


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[dict[str, str]]:
    """This module's own database (it tampers with the log)."""
    urls = await create_test_database()
    yield urls
    await drop_test_database(urls)


@pytest.fixture
async def audit_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = service_engine(settings, "audit", pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def portal(settings: Settings, notifier_engine: AsyncEngine, clock: Clock,
                 notifier_deps: NotifierDeps, tmp_path: Path
                 ) -> AsyncIterator[httpx.AsyncClient]:
    """The portal, its auditor pages calling a running audit service."""
    audit = build_audit(AuditSettings(
        **settings.model_dump(), audit_signing_key=generate_keypair().private_key,
        audit_heads_file=tmp_path / "heads.jsonl", audit_sign_every=1000))
    async with running(audit), portal_client(settings, notifier_engine, clock, notifier_deps,
                                             audit=audit) as client:
        yield client


async def an_auditor(portal: httpx.AsyncClient, settings: Settings, clock: Clock
                     ) -> httpx.Response:
    return await sign_in(portal, clock, *await new_person(settings, "auditor"))


async def seed(engine: AsyncEngine, school: str, n: int, *, key: str | None = None,
               at: datetime | None = None) -> list[uuid.UUID]:
    drafts = [EntryDraft(
        id=uuid.uuid4(), at=at or datetime.now(UTC), actor="dsl-7", actor_role="dsl",
        action="notification.view", channel="portal", school_urn=school,
        child_key=key or f"v2:{uuid.uuid4().hex}{uuid.uuid4().hex[:29]}",
        notification_id=uuid.uuid4(), purpose="operation_encompass") for _ in range(n)]
    async with engine.begin() as conn:
        await append_entries(conn, [(d, Context(la_code="E08")) for d in drafts])
    return [d.id for d in drafts]


def nav(page: httpx.Response) -> list[str]:
    return re.findall(r'class="govuk-service-navigation__link" href="([^"]+)"', page.text)


async def test_an_auditor_lands_on_the_audit_log_and_sees_nothing_else(
    portal: httpx.AsyncClient, settings: Settings, clock: Clock, notifier_engine: AsyncEngine
) -> None:
    signed = await an_auditor(portal, settings, clock)
    assert (signed.status_code, signed.headers["location"]) == (303, "/portal/audit")
    page = await portal.get("/portal/audit")
    assert page.status_code == 200
    assert nav(page) == ["/portal/audit", "/portal/audit/verify", "/portal/audit/subject-access"]
    assert "<table" not in page.text  # the form alone until a search is made
    for path in ("/portal/", "/portal/open-items", f"/portal/notifications/{uuid.uuid4()}"):
        refused = await portal.get(path)
        assert refused.headers.get("location") == "/portal/sign-in", path
    portal.cookies.clear()
    school = await add_school(notifier_engine)
    await sign_in(portal, clock, *await new_dsl(settings, school))
    for path in ("/portal/audit", "/portal/audit/verify", "/portal/audit/subject-access",
                 "/portal/audit/events.csv?search=1"):
        refused = await portal.get(path)
        assert refused.status_code == 403, path
        assert "Only auditors may use the audit log." in refused.text
        assert "/portal/audit" not in nav(refused)


async def test_a_search_pages_by_the_apis_cursor_and_downloads_as_csv(
    portal: httpx.AsyncClient, settings: Settings, clock: Clock, audit_engine: AsyncEngine
) -> None:
    school = next_urn()
    ids = await seed(audit_engine, school, PAGE_SIZE + 7)
    await an_auditor(portal, settings, clock)
    first = await portal.get("/portal/audit", params={"school_urn": school, "search": "1"})
    assert first.status_code == 200
    assert first.text.count('data-label="When"') == PAGE_SIZE
    assert "Viewed a notification" in first.text and "DSL" in first.text
    found = re.search(r'href="(/portal/audit\?[^"]*cursor=[^"]+)" rel="next"', first.text)
    assert found, first.text
    second = await portal.get(found.group(1).replace("&amp;", "&"))
    # the auditor's own first search is in the log now, but not in the pinned second page
    assert second.text.count('data-label="When"') == 7 and 'rel="next"' not in second.text
    assert "First page" in second.text
    link = re.search(r'href="(/portal/audit/events\.csv\?[^"]+)"', first.text)
    assert link
    exported = await portal.get(link.group(1).replace("&amp;", "&"))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith(
        "text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {str(i) for i in ids} <= {r["id"] for r in rows}
    assert {r["school_urn"] for r in rows} == {school}


@pytest.mark.parametrize(("query", "errors"), [
    ({"school_urn": "12ab"}, ["#school_urn"]),
    ({"child_key": "Amelia"}, ["#child_key"]),
    ({"from": "2026-13-01"}, ["#from"]),
    ({"from": "2026-12-02", "to": "2026-12-01"}, ["#to"]),
], ids=["urn", "child-key-a-name", "not-a-date", "backwards"])
async def test_bad_search_input_gets_an_error_summary(
    portal: httpx.AsyncClient, settings: Settings, clock: Clock, query: dict[str, str],
    errors: list[str]
) -> None:
    await an_auditor(portal, settings, clock)
    page = await portal.get("/portal/audit", params=query | {"search": "1"})
    assert page.status_code == 422
    assert "<title>Error: " in page.text and "govuk-error-summary" in page.text
    assert re.findall(r'<li><a href="(#[a-z_]+)">', page.text) == errors
    assert "<table" not in page.text


async def test_london_days_become_the_apis_instants(
    portal: httpx.AsyncClient, settings: Settings, clock: Clock, audit_engine: AsyncEngine
) -> None:
    school = next_urn()
    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 July in London
    [late] = await seed(audit_engine, school, 1, at=summer)
    [next_day] = await seed(audit_engine, school, 1, at=summer + timedelta(days=1))
    await an_auditor(portal, settings, clock)
    page = await portal.get("/portal/audit", params={
        "school_urn": school, "from": "2026-07-02", "to": "2026-07-02", "search": "1"})
    assert page.text.count('data-label="When"') == 1
    assert "Thursday 2 July 2026, 12:30am" in page.text
    assert str(late) not in page.text and str(next_day) not in page.text  # ids not shown


async def test_verify_says_the_log_is_intact_then_names_the_first_bad_entry(
    portal: httpx.AsyncClient, settings: Settings, clock: Clock, audit_engine: AsyncEngine,
    database: dict[str, str]
) -> None:
    ids = await seed(audit_engine, next_urn(), 3)
    await an_auditor(portal, settings, clock)
    ok = await portal.get("/portal/audit/verify")
    assert ok.status_code == 200 and "No tampering found" in ok.text
    await tamper(database, "UPDATE audit.audit_events SET purpose = 'x' WHERE id = $1", ids[1])
    try:
        bad = await portal.get("/portal/audit/verify")
        assert "The log has been tampered with" in bad.text and str(ids[1]) in bad.text
        assert "<title>Verify the log: a problem was found" in bad.text
    finally:
        await tamper(database, "UPDATE audit.audit_events SET purpose = $2 WHERE id = $1",
                     ids[1], "operation_encompass")
    assert "No tampering found" in (await portal.get("/portal/audit/verify")).text


async def test_the_subject_access_report_prints(
    portal: httpx.AsyncClient, settings: Settings, clock: Clock, audit_engine: AsyncEngine
) -> None:
    key = child_key(settings.child_key_secret.get_secret_value(), given_name="Amelia",
                    family_name="Quartermaine", date_of_birth=BORN)
    mine = await seed(audit_engine, next_urn(), 2, key=key)
    await seed(audit_engine, next_urn(), 2)
    await an_auditor(portal, settings, clock)
    form = await portal.get("/portal/audit/subject-access")
    fields = {"csrf": csrf_of(form), "given_name": "Amelia", "family_name": "Quartermaine",
              "dob-day": "27", "dob-month": "3", "dob-year": "2016"}
    report = await portal.post("/portal/audit/subject-access", data=fields)
    assert report.status_code == 200
    assert "Amelia Quartermaine" in report.text and "27 March 2016" in report.text
    assert report.text.count('data-label="When"') == len(mine) and key in report.text
    assert 'data-module="app-print"' in report.text and 'name="print" value="1"' in report.text
    assert "laid out for printing" not in report.text
    printable = await portal.post("/portal/audit/subject-access", data=fields | {"print": "1"})
    assert "laid out for printing" in printable.text
    # the first report's own request is in the log under the child's key now
    assert printable.text.count('data-label="When"') == len(mine) + 1
    assert "Ran a subject-access request" in printable.text
    wrong = await portal.post("/portal/audit/subject-access", data=fields | {
        "given_name": "", "dob-day": "31", "dob-month": "2"})
    assert wrong.status_code == 422
    assert re.findall(r'<li><a href="(#[a-z_-]+)">', wrong.text) == ["#given_name", "#dob-day"]
