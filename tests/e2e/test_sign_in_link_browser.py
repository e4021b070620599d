"""An e-mailed sign-in link in Chromium: an e-mail scanner fetching it (a browser of its own,
with its own cookies) leaves it usable; its person then opens it, signs in on its page and
lands on their notifications, and only then is the link used.

The portal runs with `cookie_secure` on, over http on 127.0.0.1: Chromium treats the
loopback address as a secure origin and keeps the `__Host-` cookies there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.app import create_app
from services.common.auth_api import SESSION_COOKIE
from services.common.settings import Settings
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps
from services.notifier.portal import router as portal_router
from tests.support.api import issuer_for
from tests.support.browser import CHROMIUM_ARGS, serving
from tests.support.clock import Clock
from tests.support.ids import next_urn
from tests.support.portal import PASSWORD, emailed_link, link_used, new_person
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def secure_portal(settings: Settings, engine: AsyncEngine, clock: Clock,
                        deps: NotifierDeps) -> AsyncIterator[str]:
    """The portal's pages alone, cookie_secure on, on a loopback port, on the test's clock."""
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings.model_copy(update={"cookie_secure": True}), engine=engine,
        registry=CollectorRegistry(), clock=clock, issuer=issuer_for(settings, clock=clock),
        deps=deps))
    app.include_router(portal_router)
    async with serving(app, free_port()) as url:
        yield url


async def test_a_scanners_visit_leaves_the_link_for_its_person(
    chromium: Path, settings: Settings, engine: AsyncEngine, notifier_engine: AsyncEngine,
    clock: Clock, notifier_deps: NotifierDeps,
) -> None:
    from playwright.async_api import async_playwright, expect

    email, totp = await new_person(settings, "dsl", schools=[next_urn()])
    token = await emailed_link(engine, [email], now=clock.now)
    async with secure_portal(settings, notifier_engine, clock, notifier_deps) as base, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            link = f"{base}/portal/sign-in?token={token}"
            scanner = await browser.new_context()
            await (await scanner.new_page()).goto(link)
            await scanner.close()
            assert not await link_used(engine, token)

            person = await browser.new_context()
            page = await person.new_page()
            await page.goto(link)
            await expect(page.locator(".govuk-notification-banner")).to_contain_text(
                "Sign in to read your new notifications")
            assert not await link_used(engine, token)
            clock.now += timedelta(seconds=30)  # a fresh TOTP step
            await page.fill("#email", email)
            await page.fill("#password", PASSWORD)
            await page.fill("#totp", totp.at(clock.now))
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(f"{base}/portal/")
            await expect(page.locator("h1")).to_have_text("Notifications")
            assert await link_used(engine, token)
            kept = {c["name"]: c for c in await person.cookies()}
            assert kept[SESSION_COOKIE]["secure"] and kept[SESSION_COOKIE]["path"] == "/"
        finally:
            await browser.close()
