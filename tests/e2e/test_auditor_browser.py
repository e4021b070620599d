"""An auditor's morning in a real browser: signs in with password + TOTP and lands on the
audit log, searches it by school with the keyboard alone (a mistyped URN first: the error
summary, announced and focused), verifies the log, produces a subject-access report and
prints it (window.print with the page's script; without it, the button asks for the page laid
out for paper, and the print stylesheet leaves the navigation off). Every page passes axe at
desk width and fits a 375 px phone.

The notifier's portal runs under uvicorn on a loopback port; its auditor pages call a running
audit service in-process with the auditor's own token. Chromium is Debian's, via playwright.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.audit.chain import EntryDraft
from services.audit.log import Context, append_entries
from services.audit.main import build_app as build_audit
from services.audit.settings import AuditSettings
from services.audit.tree_head import generate_keypair
from services.common.app import create_app
from services.common.db import service_engine
from services.common.pseudonym import child_key
from services.common.settings import Settings
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps
from services.notifier.portal import router as portal_router
from tests.conftest import REPO
from tests.support.api import issuer_for, running
from tests.support.browser import CHROMIUM_ARGS, serving
from tests.support.clock import Clock
from tests.support.ids import next_urn
from tests.support.portal import PASSWORD, new_person
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e
DESK, PHONE = {"width": 1280, "height": 900}, {"width": 375, "height": 812}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BORN = date(2016, 3, 27)  # Amelia Example's


@pytest.fixture(scope="module")
def axe() -> str:
    """axe-core's source (the front end is installed first when it is missing)."""
    source = REPO / "node_modules" / "axe-core" / "axe.min.js"
    built = REPO / "services" / "notifier" / "static" / "build" / "portal.css"
    if not source.exists() or not built.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "install-frontend.sh")], check=False,
                       capture_output=True, timeout=600)
    if not source.exists() or not built.exists():
        pytest.skip("scripts/install-frontend.sh could not install the front end")
    return source.read_text()


async def seed_log(settings: Settings, school: str) -> None:
    """Three views of Amelia's notification at the school, and two of another child's."""
    key = child_key(settings.child_key_secret.get_secret_value(), given_name="Amelia",
                    family_name="Example", date_of_birth=BORN)
    engine = service_engine(settings, "audit", pool_size=1)
    try:
        async with engine.begin() as conn:
            await append_entries(conn, [(EntryDraft(
                id=uuid.uuid4(), at=datetime.now(UTC), actor=f"dsl-{n}", actor_role="dsl",
                action="notification.view", channel="portal", school_urn=school,
                child_key=key if n < 3 else f"v2:{uuid.uuid4().hex}{uuid.uuid4().hex[:29]}",
                notification_id=uuid.uuid4(), purpose="operation_encompass"), Context())
                for n in range(5)])
    finally:
        await engine.dispose()


@asynccontextmanager
async def portal_served(settings: Settings, engine: AsyncEngine, clock: Clock,
                        deps: NotifierDeps, heads: Path) -> AsyncIterator[str]:
    """The portal on a loopback port; its auditor pages call a running audit service."""
    audit = build_audit(AuditSettings(**settings.model_dump(), audit_heads_file=heads,
                                      audit_signing_key=generate_keypair().private_key))
    log = httpx.AsyncClient(transport=httpx.ASGITransport(app=audit), base_url="http://audit")
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings.model_copy(update={"cookie_secure": False}), engine=engine,
        registry=CollectorRegistry(), clock=clock, issuer=issuer_for(settings, clock=clock),
        deps=deps, audit_api=log))
    app.include_router(portal_router)
    try:
        async with running(audit), serving(app, free_port()) as url:
            yield url
    finally:
        await log.aclose()


async def violations(page: Any, axe: str) -> list[str]:
    await page.evaluate(axe)
    found = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    return [f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in found["violations"]]


async def checked(page: Any, axe: str) -> None:
    """No axe violation, nothing wider than the viewport."""
    assert not await violations(page, axe), page.url
    width = await page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], (page.url, width)


async def tab_to(page: Any, test: str, *, limit: int = 40) -> None:
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"() => {{ const e = document.activeElement; return {test}; }}"):
            return
    raise AssertionError(f"never reached {test}")


async def search_by_keyboard(page: Any, urn: str) -> None:
    await tab_to(page, "e.id === 'school_urn'")
    await page.keyboard.press("Control+A")
    await page.keyboard.type(urn)
    await page.keyboard.press("Enter")


async def subject_access(page: Any) -> None:
    """The form filled and sent with the keyboard alone."""
    await tab_to(page, "e.id === 'given_name'")
    for value in ("Amelia", "Example", "27", "3", "2016"):
        await page.keyboard.type(value)
        await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.textContent") == (
        "Produce the report")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("h1:text('Subject-access report')")


async def test_an_auditor_searches_verifies_and_prints_a_subject_access_report(
    settings: Settings, notifier_engine: AsyncEngine, notifier_deps: NotifierDeps,
    clock: Clock, chromium: Path, axe: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    school = next_urn()
    await seed_log(settings, school)
    who: tuple[str, pyotp.TOTP] = await new_person(settings, "auditor")
    async with portal_served(settings, notifier_engine, clock, notifier_deps,
                             tmp_path / "heads.jsonl") as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            desk = await browser.new_context(viewport=DESK, bypass_csp=True)
            page = await desk.new_page()
            await page.goto(f"{base}/portal/sign-in")
            await page.fill("#email", who[0])
            await page.fill("#password", PASSWORD)
            await page.fill("#totp", who[1].at(clock.now))
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(f"{base}/portal/audit")
            sections = page.get_by_role("navigation", name="Portal sections")
            await expect(sections.get_by_role("link")).to_have_text(
                ["Audit log", "Verify the log", "Subject access"])
            await checked(page, axe)

            await search_by_keyboard(page, "12ab")
            summary = page.get_by_role("alert")
            await expect(summary).to_contain_text("Enter a school URN of 6 or 7 digits")
            assert await page.evaluate(
                "() => document.activeElement.classList.contains('govuk-error-summary')")
            await checked(page, axe)
            await search_by_keyboard(page, school)
            rows = page.locator("table.app-audit-table tbody tr")
            await expect(rows).to_have_count(5)
            await expect(rows.first).to_contain_text("Viewed a notification")
            await checked(page, axe)
            search_url = page.url

            await sections.get_by_role("link", name="Verify the log").click()
            await expect(page.locator(".govuk-panel__title")).to_have_text("No tampering found")
            await checked(page, axe)

            await sections.get_by_role("link", name="Subject access").click()
            await checked(page, axe)
            await subject_access(page)
            await expect(page.locator("table.app-audit-table tbody tr")).to_have_count(3)
            await checked(page, axe)
            # the page's script turns the button into the print dialogue
            await page.evaluate("() => { window.print = () => { window.printed = true; }; }")
            report_url = page.url
            await page.get_by_role("button", name="Print this report").click()
            assert await page.evaluate("() => window.printed === true")
            assert page.url == report_url
            # on paper: no navigation, no links or buttons, the report itself
            await page.emulate_media(media="print")
            await expect(sections).to_be_hidden()
            await expect(page.get_by_role("button", name="Print this report")).to_be_hidden()
            await expect(page.locator("table.app-audit-table")).to_be_visible()
            storage = await desk.storage_state()
            await desk.close()

            # without any script, the button asks for the page laid out for paper
            plain = await browser.new_context(viewport=DESK, java_script_enabled=False,
                                              storage_state=storage)
            page = await plain.new_page()
            await page.goto(f"{base}/portal/audit/subject-access")
            await subject_access(page)
            await page.get_by_role("button", name="Print this report").click()
            await expect(page.get_by_text("laid out for printing")).to_be_visible()
            await plain.close()

            phone = await browser.new_context(viewport=PHONE, bypass_csp=True,
                                              storage_state=storage)
            page = await phone.new_page()
            for url in (search_url, f"{base}/portal/audit/verify",
                        f"{base}/portal/audit/subject-access"):
                await page.goto(url)
                await checked(page, axe)
            await subject_access(page)
            await checked(page, axe)
            await phone.close()
        finally:
            await browser.close()
