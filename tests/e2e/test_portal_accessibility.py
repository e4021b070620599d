"""Every portal page in Chromium, checked for WCAG 2.2 A and AA with axe-core, signed out and
signed in as each role that has pages (a DSL, an LA officer), at desk (1280 px) and phone
(375 px) widths; unique titles; keyboard-only journeys (sign in with TOTP, open, acknowledge,
sign out); errors announced and focused; and the README's screenshots of the DSL's inbox and
notification page, with made-up data, taken here so that they stay current.

The notifier's portal runs under uvicorn on a loopback port on the test's clock; its review
pages call the matcher in-process (no consumers, no Kafka). axe-core and the portal's
GOV.UK Design System build come from npm through scripts/install-frontend.sh.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pyotp
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.incidents import ChildReport
from schemas.matching import ChildMatched, ChildUnmatched, IncidentFacts, SchoolMatch
from services.common.app import create_app
from services.common.models import outbox
from services.common.settings import Settings
from services.matcher.main import build_app as build_matcher
from services.matcher.models import reviews
from services.notifier.actions import actions_of, notification_actions
from services.notifier.content import opened_children, opened_notification
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps, on_child_matched, on_child_unmatched
from services.notifier.models import notification_children, notifications
from services.notifier.partners import Partner, replace_partners
from services.notifier.portal import router as portal_router
from tests.conftest import REPO
from tests.support.api import issuer_for
from tests.support.browser import CHROMIUM_ARGS, serving
from tests.support.clock import Clock
from tests.support.directory import notifier_knows_la, notifier_knows_school
from tests.support.ids import next_email, next_la, next_urn
from tests.support.notifier import rows_for
from tests.support.portal import PASSWORD, new_person
from tests.support.ports import free_port
from tests.support.tokens import person

pytestmark = pytest.mark.e2e
DESK, PHONE = {"width": 1280, "height": 900}, {"width": 375, "height": 812}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
BUILD = REPO / "services" / "notifier" / "static" / "build" / "portal.css"
SHOTS = REPO / "docs" / "screenshots"
NOTIFICATIONS = 23  # more than a page (20)
FOCUS_YELLOW = "rgb(255, 221, 0)"


@pytest.fixture(scope="module")
def frontend() -> str:
    """axe-core's source; the portal's build and axe-core installed first when missing."""
    if not AXE.exists() or not BUILD.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "install-frontend.sh")], check=False,
                       capture_output=True, timeout=600)
    if not AXE.exists() or not BUILD.exists():
        pytest.skip("scripts/install-frontend.sh could not install the front end")
    return AXE.read_text()


@dataclass
class Made:
    """Made-up data: a school with a run of notifications, an LA with an item and a review,
    and a person of each role."""

    urn: str
    la: str
    first: uuid.UUID  # the newest notification, not yet acknowledged
    acknowledged: uuid.UUID
    la_item: uuid.UUID
    review: uuid.UUID
    dsl: tuple[str, pyotp.TOTP]
    officer: tuple[str, pyotp.TOTP]


def incident(incident_id: uuid.UUID, clock: Clock, hours_ago: float) -> IncidentFacts:
    return IncidentFacts(incident_id=incident_id, force_code="WMP",
                         occurred_at=clock.now - timedelta(hours=hours_ago + 1),
                         incident_type="domestic_abuse",
                         summary="Police attended a reported argument at the home.",
                         disclosure_fields=["occurred_at", "incident_type", "summary",
                                            "present_at_incident", "voice_of_child"])


def made_up_child(given: str) -> ChildReport:
    return ChildReport(given_name=given, family_name="Example", date_of_birth=date(2016, 4, 1),
                       present_at_incident=True, voice_of_child="Said she was frightened.")


async def make_up(settings: Settings, notifier_engine: AsyncEngine, matcher_engine: AsyncEngine,
                  deps: NotifierDeps, clock: Clock) -> Made:
    urn, la = next_urn(), next_la()
    await notifier_knows_la(notifier_engine, la, contacts=[
        {"role": "safeguarding", "name": "S", "email": next_email("lado", "la.test")}])
    await notifier_knows_school(notifier_engine, urn, la, name="Oak Road Primary School",
                                participates=True, contacts=[
                                    {"role": "dsl", "name": "D", "email": next_email("dsl")}])
    ids = []
    for age in range(NOTIFICATIONS):
        incident_id = uuid.uuid4()
        await on_child_matched(wrap(ChildMatched(
            child_id=uuid.uuid5(incident_id, "0"), child_index=0,
            incident=incident(incident_id, clock, age * 5),
            child=made_up_child(("Maya", "Leo", "Ava", "Noah")[age % 4]), decided_by="engine",
            schools=[SchoolMatch(urn=urn, la_code=la, score=30)],
            matched_at=clock.now - timedelta(hours=age * 5))), deps=deps)
        [row] = await rows_for(notifier_engine, incident_id)
        ids.append(row.id)
    # a mix of what people have done: read, acknowledged, withdrawn by the police
    n = notifications.c
    async with notifier_engine.begin() as conn:
        for index, row_id in enumerate(ids):
            at = clock.now - timedelta(hours=index * 5 - 1)
            state = ("sent", "viewed", "acknowledged", "retracted")[index % 4] if index else "sent"
            values: dict[str, Any] = {"state": state, "created_at": at - timedelta(hours=1),
                                      "sent_at": at}
            if state in ("viewed", "acknowledged"):
                values["viewed_at"] = at
            if state == "acknowledged":
                values |= {"acknowledged_at": at, "action_taken": "pastoral support"}
            await conn.execute(update(notifications).where(n.id == row_id).values(**values))
    incident_id = uuid.uuid4()
    await on_child_unmatched(wrap(ChildUnmatched(
        child_id=uuid.uuid4(), child_index=0, incident=incident(incident_id, clock, 1),
        child=made_up_child("Ola"), la_code=la, reason="not_on_roll", decided_by="engine",
        decided_at=clock.now - timedelta(hours=1))), deps=deps)
    [la_row] = await rows_for(notifier_engine, incident_id)
    review = await queue_review(matcher_engine, la, clock)
    return Made(urn, la, ids[0], ids[2], la_row.id, review,
                await new_person(settings, "dsl", schools=[urn]),
                await new_person(settings, "la_officer", las=[la]))


async def queue_review(matcher_engine: AsyncEngine, la: str, clock: Clock) -> uuid.UUID:
    """A review in the matcher's queue, its two candidates with the matcher's explanation."""
    incident_id, review_id = uuid.uuid4(), uuid.uuid4()
    north, south = next_urn(), next_urn()

    def candidate(urn: str, school: str, line1: str, address: str) -> dict[str, Any]:
        return {"urn": urn, "school_name": school, "upn": "", "given_name": "Oliver",
                "preferred_name": "", "family_name": "Example", "former_family_name": "",
                "date_of_birth": "2017-05-05", "gender": "M", "address_line1": line1,
                "postcode": "B1 1AA", "enrolment_status": "C", "score": 21.5,
                "agreements": {"given_name": "exact", "family_name": "exact",
                               "date_of_birth": "exact", "address": address},
                "explanation": [{"field": "given_name", "level": "exact", "bits": 6.2},
                                {"field": "address", "level": address, "bits": -1.5}]}

    async with matcher_engine.begin() as conn:
        await conn.execute(insert(reviews).values(
            review_id=review_id, incident_id=incident_id, child_index=0,
            child_id=uuid.uuid5(incident_id, "0"), la_code=la,
            child={"given_name": "Oliver", "family_name": "Example",
                   "date_of_birth": "2017-05-05", "gender": "M"},
            incident=incident(incident_id, clock, 2).model_dump(mode="json"),
            reason="two pupils score alike", created_at=clock.now - timedelta(hours=1),
            deadline_at=clock.now + timedelta(hours=2, minutes=10), candidates=[
                candidate(north, "North Primary", "1 High St", "disagree"),
                candidate(south, "South Primary", "99 Low Rd", "same_household")]))
    return review_id


@asynccontextmanager
async def portal_served(settings: Settings, engine: AsyncEngine, clock: Clock,
                        deps: NotifierDeps) -> AsyncIterator[str]:
    """The portal on a loopback port, on the test's clock; reviews from the matcher's app."""
    matcher = build_matcher(settings)
    matcher.state.ctx.clock = clock
    reviews_api = httpx.AsyncClient(transport=httpx.ASGITransport(app=matcher),
                                    base_url="http://matcher")
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings.model_copy(update={"cookie_secure": False}), engine=engine,
        registry=CollectorRegistry(), clock=clock, issuer=issuer_for(settings, clock=clock),
        deps=deps, matcher_api=reviews_api))
    app.include_router(portal_router)
    try:
        async with serving(app, free_port()) as url:
            yield url
    finally:
        await reviews_api.aclose()
        await matcher.state.ctx.engine.dispose()


async def sign_in(page: Any, base: str, who: tuple[str, pyotp.TOTP], clock: Clock) -> None:
    clock.now += timedelta(seconds=30)  # a fresh TOTP step: a used code cannot be replayed
    await page.goto(f"{base}/portal/sign-in")
    await page.fill("#email", who[0])
    await page.fill("#password", PASSWORD)
    await page.fill("#totp", who[1].at(clock.now))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/portal/")


async def violations(page: Any, axe: str) -> list[str]:
    """axe-core's WCAG 2.2 A/AA violations on the page, one line each."""
    await page.evaluate(axe)
    found = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    return [f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in found["violations"]]


async def scan(browser: Any, base: str, axe: str, paths: list[str], *,
               storage: Any = None) -> dict[str, str]:
    """Each path at both widths: no violation, nothing wider than the screen; its title."""
    titles: dict[str, str] = {}
    for viewport in (DESK, PHONE):
        # CSP bypassed only so that axe can be injected; the pages' own policy is tested in
        # tests/integration/test_portal.py
        context = await browser.new_context(viewport=viewport, bypass_csp=True,
                                            storage_state=storage)
        page = await context.new_page()
        for path in paths:
            response = await page.goto(base + path)
            assert response is not None and response.status < 500, path
            found = await violations(page, axe)
            assert not found, (path, viewport["width"], found)
            width = await page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= viewport["width"], (path, viewport["width"], width)
            titles[path] = await page.title()
        await context.close()
    return titles


async def focus_ring(page: Any) -> bool:
    """The focused element shows the GOV.UK focus style: yellow behind it, a yellow outline,
    or (a radio or checkbox) a yellow ring round its label's circle or box."""
    style = await page.evaluate("""() => { const e = document.activeElement;
        const s = getComputedStyle(e), label = document.querySelector(`label[for='${e.id}']`);
        const ring = label ? getComputedStyle(label, '::before').boxShadow : '';
        return [s.backgroundColor, s.outlineStyle === 'none' ? '' : s.outlineColor,
                s.boxShadow, ['radio', 'checkbox'].includes(e.type) ? ring : '']; }""")
    return any(FOCUS_YELLOW in value for value in style)


async def tab_to(page: Any, test: str, *, limit: int = 60, key: str = "Tab") -> None:
    """Press Tab (or `key`) until the focused element passes `test` (JS on `e`), and see
    that its focus is visible."""
    for _ in range(limit):
        await page.keyboard.press(key)
        if await page.evaluate(f"() => {{ const e = document.activeElement; return {test}; }}"):
            assert await focus_ring(page), test
            return
    raise AssertionError(f"never reached {test} by {key}")


async def test_every_page_passes_axe_at_both_widths_with_unique_titles(
    settings: Settings, notifier_engine: AsyncEngine, matcher_engine: AsyncEngine,
    notifier_deps: NotifierDeps, clock: Clock, chromium: Path, frontend: str,
) -> None:
    from playwright.async_api import async_playwright

    made = await make_up(settings, notifier_engine, matcher_engine, notifier_deps, clock)
    async with portal_served(settings, notifier_engine, clock, notifier_deps) as base, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            signed_out = await scan(browser, base, frontend, [
                "/portal/sign-in", "/portal/sign-in?link=ok", "/portal/sign-in?link=expired",
                "/portal/accessibility"])
            # a failed sign-in: the error summary, announced and focused
            context = await browser.new_context(viewport=DESK, bypass_csp=True)
            page = await context.new_page()
            await page.goto(f"{base}/portal/sign-in")
            await page.fill("#email", made.dsl[0])
            await page.fill("#password", "not the password")
            await page.fill("#totp", "000000")
            await page.get_by_role("button", name="Sign in").click()
            await page.get_by_role("alert").wait_for()
            assert "There is a problem" in await page.get_by_role("alert").inner_text()
            assert await page.evaluate(
                "() => document.activeElement.classList.contains('govuk-error-summary')")
            assert (await page.title()).startswith("Error: ")
            assert await page.locator(".govuk-error-summary a").get_attribute("href") == "#email"
            assert not await violations(page, frontend)
            await context.close()

            context = await browser.new_context(viewport=DESK)
            page = await context.new_page()
            await sign_in(page, base, made.dsl, clock)
            dsl_storage = await context.storage_state()
            await context.close()
            dsl = await scan(browser, base, frontend, [
                "/portal/", "/portal/?page=2", "/portal/?state=new",
                "/portal/?state=acknowledged&from=2020-01-01", "/portal/?from=2026-02-31",
                f"/portal/notifications/{made.first}",
                f"/portal/notifications/{made.acknowledged}",
                "/portal/notifications/not-a-notification", "/portal/accessibility",
                "/portal/sessions", "/portal/sessions/others/end"],
                storage=dsl_storage)

            context = await browser.new_context(viewport=DESK)
            page = await context.new_page()
            await sign_in(page, base, made.officer, clock)
            officer_storage = await context.storage_state()
            await context.close()
            officer = await scan(browser, base, frontend, [
                "/portal/", "/portal/open-items", "/portal/open-items?kind=review",
                "/portal/reviews", "/portal/reviews?state=later", f"/portal/reviews/{made.review}",
                f"/portal/notifications/{made.la_item}", "/portal/partners",
                "/portal/partners/entry"], storage=officer_storage)

            # a review resolved with nothing chosen: the errors, announced, link to the fields
            context = await browser.new_context(viewport=PHONE, bypass_csp=True,
                                                storage_state=officer_storage)
            page = await context.new_page()
            await page.goto(f"{base}/portal/reviews/{made.review}")
            explained = page.locator("table.app-explanation")
            await explained.first.wait_for()
            assert await explained.count() == 2
            assert "+6.2" in await explained.first.inner_text()
            await page.get_by_role("button", name="Resolve review").click()
            summary = page.locator(".govuk-error-summary")
            await summary.wait_for()
            hrefs = await summary.locator("a").evaluate_all("links => links.map(a => a.hash)")
            assert hrefs == ["#choice-1", "#reason"]
            assert not await violations(page, frontend)
            await context.close()
        finally:
            await browser.close()

    for role, titles in (("signed out", signed_out), ("DSL", dsl), ("LA officer", officer)):
        pages = [t for p, t in titles.items() if "not-a-notification" not in p]
        assert len(set(pages)) == len(pages), (role, titles)
        assert all(t.endswith("\u2013 Daybreak") for t in titles.values()), titles
    assert "(page 2 of 2)" in dsl["/portal/?page=2"]
    assert dsl["/portal/sessions"].startswith("Your sessions")  # signed in, not sent away


async def test_a_dsl_signs_in_opens_acknowledges_and_signs_out_by_keyboard_alone(
    settings: Settings, notifier_engine: AsyncEngine, matcher_engine: AsyncEngine,
    notifier_deps: NotifierDeps, clock: Clock, chromium: Path, frontend: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    made = await make_up(settings, notifier_engine, matcher_engine, notifier_deps, clock)
    async with portal_served(settings, notifier_engine, clock, notifier_deps) as base, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(viewport=PHONE)).new_page()
            await page.goto(f"{base}/portal/sign-in")
            await page.keyboard.press("Tab")
            assert await page.evaluate("() => document.activeElement.textContent") == (
                "Skip to main content")
            assert await focus_ring(page)
            await page.keyboard.press("Enter")
            assert await page.evaluate("() => document.activeElement.id") == "main-content"
            clock.now += timedelta(seconds=30)
            for field, text in (("email", made.dsl[0]), ("password", PASSWORD),
                                ("totp", made.dsl[1].at(clock.now))):
                await tab_to(page, f"e.id === '{field}'")
                await page.keyboard.type(text)
            await tab_to(page, "e.textContent.trim() === 'Sign in'")
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/portal/")

            await tab_to(page, f"e.getAttribute('href') === '/portal/notifications/{made.first}'",
                         limit=120)
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/portal/notifications/{made.first}")
            await expect(page.locator("h3.govuk-summary-card__title")).to_have_text("Maya Example")
            await expect(page.get_by_text("Domestic abuse", exact=True).first).to_be_visible()
            await tab_to(page, "e.id === 'action'")  # the first action
            await page.keyboard.press("Space")
            assert await page.is_checked("#action")
            await tab_to(page, "e.id === 'attended-yes'")
            await page.keyboard.press("Space")
            await tab_to(page, "e.textContent.trim() === 'Acknowledge'")
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/portal/?acknowledged=1")
            await expect(page.get_by_role("alert")).to_contain_text("Acknowledgement recorded.")

            # the banner has the focus; the menu above it is collapsed at phone width: open
            # it by keyboard, then sign out
            await tab_to(page, "e.textContent.trim() === 'Menu'", key="Shift+Tab")
            await page.keyboard.press("Enter")
            await tab_to(page, "e.textContent.trim() === 'Sign out'")
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/portal/sign-in")
            await page.goto(f"{base}/portal/")
            assert page.url == f"{base}/portal/sign-in"  # signed out
        finally:
            await browser.close()
    async with notifier_engine.connect() as conn:
        row = opened_notification(conn, (await conn.execute(select(notifications).where(
            notifications.c.id == made.first))).one()._mapping)  # the school's words: sealed
    assert row["state"] == "acknowledged"
    assert row["action_taken"] == "attended this morning: yes"


async def test_the_readme_screenshots_of_the_dsls_inbox_and_notification(
    settings: Settings, notifier_engine: AsyncEngine, matcher_engine: AsyncEngine,
    notifier_deps: NotifierDeps, clock: Clock, chromium: Path, frontend: str,
) -> None:
    from playwright.async_api import async_playwright

    made = await make_up(settings, notifier_engine, matcher_engine, notifier_deps, clock)
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with portal_served(settings, notifier_engine, clock, notifier_deps) as base, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport=DESK)
            page = await context.new_page()
            await sign_in(page, base, made.dsl, clock)
            storage = await context.storage_state()
            await context.close()
            # both inboxes before the notification is opened, so the two show the same
            # counts and states
            widths = (("desk", {"width": 1280, "height": 1100}),
                      ("phone", {"width": 375, "height": 1200}))
            for shot, url in (("inbox", "/portal/"),
                              ("notification", f"/portal/notifications/{made.first}")):
                for name, viewport in widths:
                    context = await browser.new_context(viewport=viewport,
                                                        storage_state=storage)
                    page = await context.new_page()
                    await page.goto(f"{base}{url}")
                    text = await page.locator("main").inner_text()
                    assert "Oak Road Primary School (URN" in text
                    assert re.search(r"\w+day \d{1,2} \w+ \d{4}, \d{1,2}:\d\d[ap]m", text), text
                    await page.screenshot(path=str(SHOTS / f"{shot}-{name}.png"),
                                          full_page=shot == "notification" and name == "desk")
                    await context.close()
        finally:
            await browser.close()
    assert all((SHOTS / f"{p}-{w}.png").stat().st_size > 10_000
               for p in ("inbox", "notification") for w in ("desk", "phone"))


async def history_and_directory(notifier_engine: AsyncEngine, made: Made) -> uuid.UUID:
    """Maya's latest earlier notification acknowledged with a referral, and the LA's
    partner directory; that earlier notification's id."""
    n, c = notifications.c, notification_children.c
    async with notifier_engine.begin() as conn:
        kids = (await conn.execute(
            select(notification_children).join(notifications, c.notification_id == n.id)
            .where(n.school_urn == made.urn, n.id != made.first)
            .order_by(n.created_at.desc()))).all()
        # each child is sealed: opened as the notifier opens them, to find Maya's
        earlier = next(kid["notification_id"] for kid in opened_children(
            conn, [row._mapping for row in kids]) if kid["child"]["given_name"] == "Maya")
        at = (await conn.execute(update(notifications).where(n.id == earlier).values(
            state="acknowledged", acknowledged_at=n.created_at).returning(n.created_at))
            ).scalar_one()
        await conn.execute(insert(notification_actions).values(
            notification_id=earlier, type="school_nurse", on_date=at.date(), follow_up=False,
            note="Seen by the school nurse", recorded_at=at, recorded_by="made-up"))
        await replace_partners(conn, made.la, [
            Partner(need_type="early_help", name="Early Help hub", phone="0121 303 1234",
                    email="early.help@la.example.org", hours="Monday to Friday, 9am to 5pm",
                    guidance="Ring the hub first, then send the Early Help form."),
            Partner(need_type="domestic_abuse_services", name="IDVA service",
                    phone="0800 123 4567")], by=person("la_officer", las=[made.la]), at=at)
    return earlier


async def test_a_dsl_sees_the_history_and_directory_and_acknowledges_two_actions_by_keyboard(
    settings: Settings, notifier_engine: AsyncEngine, matcher_engine: AsyncEngine,
    notifier_deps: NotifierDeps, clock: Clock, chromium: Path, frontend: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    made = await make_up(settings, notifier_engine, matcher_engine, notifier_deps, clock)
    earlier = await history_and_directory(notifier_engine, made)
    async with portal_served(settings, notifier_engine, clock, notifier_deps) as base, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport=PHONE, bypass_csp=True)
            page = await context.new_page()
            await sign_in(page, base, made.dsl, clock)
            await tab_to(page, f"e.getAttribute('href') === '/portal/notifications/{made.first}'",
                         limit=120)
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/portal/notifications/{made.first}")
            history = page.locator("table", has_text="What was done")
            await expect(history).to_contain_text("Referral to the school nurse")
            assert "Seen by the school nurse" not in await history.inner_text()  # no notes
            directory = page.locator("aside.app-directory")
            await expect(directory.locator(".govuk-summary-card__title")).to_have_text(
                ["Early Help (CAF)", "Domestic abuse services (IDVA)"])
            await expect(directory).to_contain_text("0121 303 1234")
            assert not await violations(page, frontend)
            assert await page.evaluate("() => document.documentElement.scrollWidth") <= 375

            # two actions, each with its date (today, as given) and one with a note
            await tab_to(page, "e.id === 'action-early_help'")
            await page.keyboard.press("Space")
            await tab_to(page, "e.id === 'note-early_help'", limit=6)  # past the date's parts
            await page.keyboard.type("Early Help assessment started")
            await tab_to(page, "e.id === 'action-support_in_school'")
            await page.keyboard.press("Space")
            await tab_to(page, "e.id === 'attended-yes'")
            await page.keyboard.press("Space")
            assert not await violations(page, frontend)  # with the two rows open
            await tab_to(page, "e.textContent.trim() === 'Acknowledge'")
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/portal/?acknowledged=1")
            await page.goto(f"{base}/portal/notifications/{made.first}")
            done = page.locator("#actions + dl")
            await expect(done).to_contain_text("Early Help started (CAF)")
            await expect(done).to_contain_text("Early Help assessment started")
            await expect(done).to_contain_text("Support in school")
            await expect(page.get_by_role("button", name="Add follow-up")).to_be_visible()
            assert not await violations(page, frontend)
            await context.close()
        finally:
            await browser.close()
    async with notifier_engine.connect() as conn:
        # the notes are sealed: read as the notifier reads them
        recorded = [SimpleNamespace(**a) for a in (await actions_of(
            conn, [made.first], notes=True))[made.first]]
        reads = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == settings.topic("notifier"),
            outbox.c.topic == settings.topic("disclosures.v1")))).scalars().all()
    assert [(a.type, a.note) for a in recorded] == [
        ("early_help", "Early Help assessment started"), ("support_in_school", None)]
    assert any(b"history.read" in v and str(made.first).encode() in v for v in reads)
    assert str(earlier) not in str(recorded)
