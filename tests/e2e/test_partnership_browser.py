"""The partnership's figures in Chromium: a partnership signs in and lands on its figures, the
charts are drawn (server-side SVG, no script needed) with their tables beside them, the page is
axe-clean (WCAG 2.2 A/AA) and no wider than the screen at 1280 and 375 px, and the filter works
by keyboard alone with the focus visible.

The read model is filled through the figures' own event handlers (the same ones the notifier's
`figures` consumer runs), twelve weeks of made-up notifications before the test's clock."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.notifications import (
    Action,
    NotificationAcknowledged,
    NotificationPushed,
    NotificationScheduled,
)
from services.common.app import create_app
from services.common.db import UnitOfWork
from services.common.events import apply_values
from services.common.settings import Settings
from services.notifier import figures
from services.notifier.context import NotifierContext
from services.notifier.figures_store import HANDLERS, FiguresDeps
from services.notifier.handlers import NotifierDeps
from services.notifier.portal import router as portal_router
from tests.conftest import REPO
from tests.support.api import issuer_for
from tests.support.browser import CHROMIUM_ARGS, serving
from tests.support.clock import Clock
from tests.support.directory import notifier_knows_la
from tests.support.ids import next_force, next_la, next_urn
from tests.support.portal import PASSWORD, new_person
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e
DESK, PHONE = {"width": 1280, "height": 900}, {"width": 375, "height": 812}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
BUILD = REPO / "services" / "notifier" / "static" / "build" / "portal.css"
FOCUS_YELLOW = "rgb(255, 221, 0)"


@pytest.fixture(scope="module")
def axe() -> str:
    """axe-core's source (the front end installed first when missing)."""
    if not AXE.exists() or not BUILD.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "install-frontend.sh")], check=False,
                       capture_output=True, timeout=600)
    if not AXE.exists() or not BUILD.exists():
        pytest.skip("scripts/install-frontend.sh could not install the front end")
    return AXE.read_text()


async def twelve_weeks(engine: AsyncEngine, clock: Clock, la: str, forces: list[str]) -> None:
    """Each past week's notifications (some weeks fewer than 5), pushed and acknowledged."""
    values = []
    for back in range(1, 12):
        monday = figures.week_start(figures.iso_week(clock.now - timedelta(weeks=back)))
        at = monday + timedelta(hours=6)
        for k in range(3 if back % 4 == 0 else 6 + back % 3):
            ids: dict[str, Any] = {
                "incident_id": uuid.uuid4(), "notification_id": uuid.uuid4(),
                "force_code": forces[k % len(forces)], "school_urn": next_urn(), "la_code": la}
            acked = at + timedelta(minutes=40 + 30 * k + 5 * back)
            values += [wrap(e, occurred_at=e.at).to_bytes() for e in (
                NotificationScheduled(**ids, at=at, recipient_role="school", child_indexes=[0],
                                      push_at=at + timedelta(minutes=30),
                                      deadline_at=at + timedelta(hours=2, minutes=45)),
                NotificationPushed(**ids, at=at + timedelta(minutes=30), channel="email"),
                NotificationAcknowledged(**ids, at=acked, acknowledger_role="dsl", actions=[
                    Action(type="early_help" if k % 2 else "support_in_school",
                           on=acked.date())]))]
    async with UnitOfWork(engine) as uow:
        await apply_values(values, HANDLERS, deps=FiguresDeps(engine), uow=uow)
        await uow.commit()


@asynccontextmanager
async def portal_served(settings: Settings, engine: AsyncEngine, clock: Clock,
                        deps: NotifierDeps) -> AsyncIterator[str]:
    """The portal (its routers only: no consumer) on a loopback port, on the test's clock."""
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings.model_copy(update={"cookie_secure": False}), engine=engine,
        registry=CollectorRegistry(), clock=clock, issuer=issuer_for(settings, clock=clock),
        deps=deps))
    app.include_router(portal_router)
    async with serving(app, free_port()) as url:
        yield url


async def sign_in_as(page: Any, base: str, who: tuple[str, pyotp.TOTP], clock: Clock) -> None:
    clock.now += timedelta(seconds=30)  # a fresh TOTP step
    await page.goto(f"{base}/portal/sign-in")
    await page.fill("#email", who[0])
    await page.fill("#password", PASSWORD)
    await page.fill("#totp", who[1].at(clock.now))
    await page.get_by_role("button", name="Sign in").click()


async def axe_violations(page: Any, source: str) -> list[str]:
    await page.evaluate(source)
    found = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    return [f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in found["violations"]]


async def press_tab_until(page: Any, test: str, *, limit: int = 80) -> None:
    """Tab until the focused element passes `test` (JS on `e`); its focus must be visible."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"() => {{ const e = document.activeElement; return {test}; }}"):
            style = await page.evaluate("""() => { const s = getComputedStyle(
                document.activeElement); return [s.backgroundColor, s.outlineColor,
                s.boxShadow].join(' '); }""")
            assert FOCUS_YELLOW in style, (test, style)
            return
    raise AssertionError(f"never reached {test}")


async def test_a_partnership_reads_its_figures_by_keyboard_at_both_widths(
    settings: Settings, notifier_engine: AsyncEngine, notifier_deps: NotifierDeps,
    clock: Clock, chromium: Path, axe: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    la, forces = next_la(), [next_force("P"), next_force("Q")]
    await notifier_knows_la(notifier_engine, la)
    await twelve_weeks(notifier_engine, clock, la, forces)
    partnership = await new_person(settings, "partnership", las=[la])
    officer = await new_person(settings, "la_officer", las=[la])
    async with portal_served(settings, notifier_engine, clock, notifier_deps) as base, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport=DESK)
            page = await context.new_page()
            await sign_in_as(page, base, partnership, clock)
            await page.wait_for_url(f"{base}/portal/partnership")  # its home: the figures
            storage = await context.storage_state()
            charts = page.locator("svg.app-chart")
            await expect(charts).to_have_count(3)
            await expect(charts.first).to_be_visible()
            box = await charts.first.bounding_box()
            assert box is not None and box["width"] > 600 and box["height"] > 200
            assert await page.locator("#chart-notifications rect").count() >= 8
            await expect(page.locator("#table-notifications")).to_contain_text("fewer than 5")
            await expect(page.get_by_role("img", name="Notifications per week")).to_be_visible()
            await expect(page.get_by_role("link", name="Figures", exact=True)).to_have_attribute(
                "aria-current", "page")
            await context.close()

            for viewport in (DESK, PHONE):
                context = await browser.new_context(viewport=viewport, bypass_csp=True,
                                                    storage_state=storage)
                page = await context.new_page()
                for path in ("/portal/partnership", f"/portal/partnership?force={forces[0]}",
                             "/portal/partnership?from=2026-W99"):
                    response = await page.goto(base + path)
                    assert response is not None and response.status == 200, path
                    assert not await axe_violations(page, axe), (path, viewport)
                    width = await page.evaluate("() => document.documentElement.scrollWidth")
                    assert width <= viewport["width"], (path, viewport, width)
                await context.close()

            # by keyboard alone, on a phone: choose a force, show its figures, reach the CSV
            context = await browser.new_context(viewport=PHONE, storage_state=storage)
            page = await context.new_page()
            await page.goto(f"{base}/portal/partnership")
            await press_tab_until(page, "e.id === 'force'")
            await page.keyboard.press("ArrowDown")
            assert await page.input_value("#force") == sorted(forces)[0]
            await press_tab_until(page, "e.textContent.trim() === 'Show figures'")
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/portal/partnership?**force={sorted(forces)[0]}**")
            await press_tab_until(page, "e.textContent.startsWith('Download these figures')")
            async with page.expect_download() as download:
                await page.keyboard.press("Enter")
            saved = await (await download.value).path()
            lines = Path(saved).read_text().splitlines()
            assert lines[0].startswith("la_code,force_code,iso_week")
            assert {line.split(",")[1] for line in lines[1:]} == {sorted(forces)[0]}
            await press_tab_until(page, "e.getAttribute('role') === 'region'")
            await context.close()

            # an LA officer has the same page, for their LA, in the navigation
            context = await browser.new_context(viewport=DESK)
            page = await context.new_page()
            await sign_in_as(page, base, officer, clock)
            await page.wait_for_url(f"{base}/portal/")
            await page.get_by_role("link", name="Figures", exact=True).click()
            await page.wait_for_url(f"{base}/portal/partnership")
            await expect(page.locator("main")).to_contain_text(f"LA {la} ({la})")
            await context.close()
        finally:
            await browser.close()
