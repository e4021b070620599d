"""A person's own sessions in Chromium, at desk width and at 375 px: signed in twice (two
browsers), the "Your sessions" page lists both and marks this one; the other is ended with the
password and a new code, by keyboard alone, and that browser is signed out on its next page.
And an e-mailed sign-in link's page at 375 px: nothing wider than the screen, its button
reached and pressed from the keyboard.

The notifier runs whole (its revocation feed reading identity-revocations.v1) beside an
identity service whose relay publishes what it ends, on the test's clock (each sign-in and
each code asked again takes a new TOTP step)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.settings import Settings
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.support.browser import CHROMIUM_ARGS, serving, until
from tests.support.clock import Clock
from tests.support.ids import next_urn
from tests.support.portal import PASSWORD, emailed_link, link_used, new_person
from tests.support.ports import free_port
from tests.support.signin import identity_app
from tests.support.tokens import identity_settings_for

pytestmark = pytest.mark.e2e
DESK, PHONE = {"width": 1280, "height": 900}, {"width": 375, "height": 812}
SIGNED_OUT_WITHIN_S = 15  # the revocation feed's bound (tests/integration/test_sessions.py)


@asynccontextmanager
async def portal(settings: Settings, clock: Clock) -> AsyncIterator[str]:
    """The notifier on a loopback port, calling an identity service that runs its relay."""
    port = free_port()
    async with identity_app(identity_settings_for(settings), clock=clock) as identity:
        issuer = httpx.AsyncClient(transport=httpx.ASGITransport(app=identity),
                                   base_url="http://identity")
        notifier = build_notifier(NotifierSettings(**settings.model_dump() | {
            "cookie_secure": False, "portal_base_url": f"http://127.0.0.1:{port}"}),
            issuer=issuer)
        async with serving(notifier, port) as base:
            yield base


async def tab_to(page: Any, test: str, *, limit: int = 60) -> None:
    """Press Tab until the focused element passes `test` (JS on `e`)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"() => {{ const e = document.activeElement; return {test}; }}"):
            return
    raise AssertionError(f"never reached {test}")


async def fits(page: Any, viewport: dict[str, int]) -> None:
    """Nothing on the page is wider than the screen (no horizontal scroll)."""
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= viewport["width"], (page.url, viewport["width"], width)


async def signed_in(browser: Any, base: str, viewport: dict[str, int], clock: Clock,
                    email: str, totp: pyotp.TOTP) -> tuple[Any, Any]:
    """A browser of its own, signed in through the form: its context and page."""
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    await page.goto(f"{base}/portal/sign-in")
    clock.now += timedelta(seconds=30)
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.fill("#totp", totp.at(clock.now))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/portal/")
    return context, page


async def answer_by_keyboard(page: Any, clock: Clock, totp: pyotp.TOTP, *,
                             password: str = PASSWORD) -> None:
    """The password and a new code typed in, the form sent, without the mouse."""
    await tab_to(page, "e.id === 'password'")
    await page.keyboard.type(password)
    await tab_to(page, "e.id === 'totp'")
    clock.now += timedelta(seconds=30)
    await page.keyboard.type(totp.at(clock.now))
    await page.keyboard.press("Enter")


async def end_the_other_session(browser: Any, base: str, viewport: dict[str, int],
                                clock: Clock, settings: Settings) -> None:
    """Two browsers of one DSL; the first ends the second's session from its sessions page."""
    from playwright.async_api import expect

    email, totp = await new_person(settings, "dsl", schools=[next_urn()])
    here, page = await signed_in(browser, base, viewport, clock, email, totp)
    there, other = await signed_in(browser, base, viewport, clock, email, totp)
    try:
        # on every page, below the header: reached from the keyboard at either width
        await tab_to(page, "e.textContent.trim() === 'Your sessions'")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{base}/portal/sessions")
        await expect(page.locator("h1")).to_have_text("Your sessions")
        rows = page.locator("#sessions tbody tr")
        await expect(rows).to_have_count(2)
        current = rows.filter(has=page.locator(".govuk-tag", has_text="This session"))
        await expect(current).to_have_count(1)
        await fits(page, viewport)
        # the other row's link, reached from the keyboard
        await tab_to(page, "e.href && e.href.endsWith('/end') && !e.closest("
                           "'tr').querySelector('.govuk-tag')")
        await page.keyboard.press("Enter")
        await expect(page.locator("h1")).to_have_text("Sign out of this session")
        await fits(page, viewport)
        await answer_by_keyboard(page, clock, totp, password="not my password at all")
        summary = page.locator(".govuk-error-summary")
        await expect(summary).to_contain_text("The password or code is wrong")
        await expect(summary).to_be_focused()
        await answer_by_keyboard(page, clock, totp)
        await page.wait_for_url(f"{base}/portal/sessions?done=one")
        await expect(page.get_by_role("alert")).to_contain_text("You signed out of that session.")
        await expect(rows).to_have_count(1)
        await expect(current).to_have_count(1)
        # the other browser: signed out on its next page (the issuer refuses it at once)
        await other.goto(f"{base}/portal/sessions")
        assert other.url == f"{base}/portal/sign-in"

        async def inbox_refused() -> bool:  # and every page, once the feed has it
            await other.goto(f"{base}/portal/")
            return bool(other.url == f"{base}/portal/sign-in")

        await until(inbox_refused, seconds=SIGNED_OUT_WITHIN_S, what="the inbox to sign out")
        await page.goto(f"{base}/portal/")
        assert page.url == f"{base}/portal/"  # this one still signed in
    finally:
        await here.close()
        await there.close()


async def test_a_person_ends_their_other_session_with_their_password(
    chromium: Path, settings: Settings, engine: AsyncEngine, clock: Clock,
) -> None:
    from playwright.async_api import async_playwright, expect

    clock.now = datetime.now(UTC) - timedelta(minutes=10)  # each step moves it on 30 s
    async with portal(settings, clock) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            for viewport in (DESK, PHONE):
                await end_the_other_session(browser, base, viewport, clock, settings)
            # an e-mailed link's page at 375 px, for its person signed in
            email, totp = await new_person(settings, "dsl", schools=[next_urn()])
            token = await emailed_link(engine, [email], now=datetime.now(UTC))
            context, page = await signed_in(browser, base, PHONE, clock, email, totp)
            await page.goto(f"{base}/portal/link/{token}")
            await expect(page.locator("h1")).to_have_text("Open your new notifications")
            await fits(page, PHONE)
            await tab_to(page, "e.textContent.trim() === 'Open notifications'")
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/portal/")
            assert await link_used(engine, token)
            await context.close()
        finally:
            await browser.close()
