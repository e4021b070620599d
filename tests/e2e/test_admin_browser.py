"""The admin's morning in a real browser: an admin signs in with password + TOTP and lands on
the admin pages, adds a school (keyboard only), uploads its roll with a bad row and reads the
row's error in the error summary, uploads a good one (the progress bar filling as it goes up),
adds a person, sees their one-time password once, and disables them. Every admin page passes
axe-core (WCAG 2.2 A and AA) at 1280 px and at 375 px, where nothing is wider than the screen.

Ingest, matcher and notifier run under uvicorn on loopback ports; the portal calls them (and
the in-process identity service) with the admin's own token. Chromium is Debian's.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pyotp
import pytest

from services.common.settings import Settings
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.conftest import REPO
from tests.support.api import issuer_for, new_user
from tests.support.browser import CHROMIUM_ARGS, serving
from tests.support.directory import notifier_knows_la
from tests.support.ids import next_email, next_la, next_urn
from tests.support.ports import free_port
from tests.support.registry import seed

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"
WIDTHS = ({"width": 1280, "height": 900}, {"width": 375, "height": 812})
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
HEADER = ("urn,upn,given_name,preferred_name,family_name,former_family_name,date_of_birth,"
          "gender,address_line1,postcode,enrolment_status,on_roll_from,on_roll_to")


@pytest.fixture(scope="module")
def axe() -> str:
    """axe-core's source (installed by scripts/install-frontend.sh when missing)."""
    if not AXE.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "install-frontend.sh")], check=False,
                       capture_output=True, timeout=600)
    if not AXE.exists():
        pytest.skip("scripts/install-frontend.sh could not install axe-core")
    return AXE.read_text()


@asynccontextmanager
async def portal(settings: Settings) -> AsyncIterator[str]:
    """Ingest, matcher and the notifier (its portal calling their addresses); the portal's."""
    ingest_port, matcher_port, notifier_port = free_port(), free_port(), free_port()
    notifier_settings = NotifierSettings(**settings.model_dump() | {
        "ingest_url": f"http://127.0.0.1:{ingest_port}",
        "matcher_url": f"http://127.0.0.1:{matcher_port}", "cookie_secure": False,
        "portal_base_url": f"http://127.0.0.1:{notifier_port}"})
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serving(build_ingest(
            settings, issuer=issuer_for(settings)), ingest_port))
        await stack.enter_async_context(serving(build_matcher(
            settings, issuer=issuer_for(settings)), matcher_port))
        yield await stack.enter_async_context(serving(build_notifier(
            notifier_settings, issuer=issuer_for(settings)), notifier_port))


def roll(tmp: Path, name: str, urn: str, born: str) -> str:
    path = tmp / name
    path.write_text(f"{HEADER}\n{urn},,Amy,,Example,,2015-02-03,F,,,C,,\n"
                    + "".join(f"{urn},,Pupil{n},,Example,,{born},M,,,C,,\n" for n in range(400)))
    return str(path)


async def tab_to(page: Any, test: str, *, limit: int = 80) -> None:
    """Press Tab until the focused element passes `test` (JS on `e`)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"() => {{ const e = document.activeElement; return {test}; }}"):
            return
    raise AssertionError(f"never reached {test}")


async def add_school_by_keyboard(page: Any, base: str, urn: str, la: str) -> None:
    """Open or add the URN, then fill in and save the school without the mouse."""
    from playwright.async_api import expect

    await page.goto(f"{base}/portal/admin/schools")
    await tab_to(page, "e.id === 'urn'")
    await page.keyboard.type(urn)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/portal/admin/schools/{urn}")
    await expect(page.locator("h1")).to_contain_text("(new)")
    await tab_to(page, "e.id === 'name'")
    await page.keyboard.type("Oak Road Primary")
    await tab_to(page, "e.id === 'la_code'")
    await page.keyboard.type(f"LA {la} ({la})")  # a select picks the option typed
    await tab_to(page, "e.id === 'contacts-0-name'")
    await page.keyboard.type("Dee Sell")
    await page.keyboard.press("Tab")
    await page.keyboard.type("dee@school.test")
    await tab_to(page, "e.textContent.trim() === 'Save school'")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/portal/admin/schools?saved={urn}")
    await expect(page.get_by_role("alert")).to_contain_text(f"Saved {urn}.")


async def upload_rolls(page: Any, base: str, urn: str, tmp: Path) -> None:
    """A roll with a bad row: its row named in the summary, nothing kept; then a good one."""
    from playwright.async_api import expect

    await page.goto(f"{base}/portal/admin/schools/{urn}")
    await page.set_input_files("#roster-file", roll(tmp, "bad.csv", urn, "2016-13-01"))
    await page.get_by_role("button", name="Upload roll").click()
    summary = page.locator(".govuk-error-summary")
    await expect(summary).to_contain_text("Row 3: date_of_birth: must be a date as YYYY-MM-DD")
    await expect(summary).to_be_focused()
    assert "Pupil" not in await summary.inner_text()  # rows by number, never their values
    await page.goto(f"{base}/portal/admin/schools/{urn}")
    await page.set_input_files("#roster-file", roll(tmp, "good.csv", urn, "2016-03-01"))
    await page.get_by_role("button", name="Upload roll").click()
    await expect(page.get_by_role("alert")).to_contain_text("Roll replaced: 401 pupils.")
    assert page.url == f"{base}/portal/admin/schools/{urn}?roster=401"


async def add_and_disable_a_person(page: Any, base: str) -> None:
    """A new DSL: the one-time password shown once, then the account disabled."""
    from playwright.async_api import expect

    email = next_email("newdsl")
    await page.goto(f"{base}/portal/admin/users")
    await page.fill("#email", email)
    await page.select_option("#role", "dsl")
    await page.fill("#school_urns", next_urn())
    await page.get_by_role("button", name="Add person").click()
    await expect(page.locator("h1")).to_have_text("Account created")
    password = await page.locator("#password").inner_text()
    assert len(password) >= 12 and password not in page.url
    await page.get_by_role("link", name="Done").click()
    assert password not in await page.content()
    row = page.get_by_role("row").filter(has_text=email)
    await row.get_by_role("button", name="Disable", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("Account disabled.")
    await expect(page.get_by_role("row").filter(has_text=email)).to_contain_text("Disabled")


async def scan(browser: Any, storage: Any, base: str, axe: str, paths: list[str]) -> None:
    """Each page at both widths: no axe violation, nothing wider than the screen."""
    for viewport in WIDTHS:
        context = await browser.new_context(viewport=viewport, bypass_csp=True,
                                            storage_state=storage)
        page = await context.new_page()
        for path in paths:
            response = await page.goto(base + path)
            assert response is not None and response.status == 200, path
            await page.evaluate(axe)
            found = await page.evaluate(
                "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
            assert not found["violations"], (path, viewport["width"], [
                (v["id"], [n["target"] for n in v["nodes"]][:3]) for v in found["violations"]])
            width = await page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= viewport["width"], (path, viewport["width"], width)
        await context.close()


async def test_an_admin_adds_a_school_its_roll_and_a_person(
    settings: Settings, chromium: Path, axe: str, notifier_engine: Any, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    la, urn, email = next_la(), next_urn(), next_email("admin")
    await seed(settings, las=[la], school_rows=[], pupil_rows=[])
    await notifier_knows_la(notifier_engine, la)
    _, secret = await new_user(settings, email=email, password=PASSWORD, role="admin",
                               school_urns=[], la_codes=[])
    async with portal(settings) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            desk = await browser.new_context()
            page = await desk.new_page()
            await page.goto(f"{base}/portal/sign-in")
            await page.fill("#email", email)
            await page.fill("#password", PASSWORD)
            await page.fill("#totp", pyotp.TOTP(secret).now())
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(f"{base}/portal/admin")
            await add_school_by_keyboard(page, base, urn, la)
            await upload_rolls(page, base, urn, tmp_path)
            await add_and_disable_a_person(page, base)
            await scan(browser, await desk.storage_state(), base, axe, [
                "/portal/admin", "/portal/admin/forces", "/portal/admin/forces/WMP",
                "/portal/admin/local-authorities", f"/portal/admin/local-authorities/{la}",
                "/portal/admin/schools", f"/portal/admin/schools/{urn}",
                "/portal/admin/users", "/portal/admin/clients",
                "/portal/admin/dead-deliveries"])
            assert re.search(r"Daybreak", await page.title())
        finally:
            await browser.close()
