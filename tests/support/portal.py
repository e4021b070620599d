"""The DSL portal in-process (the `portal` fixture), DSL accounts and signing in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pyotp
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.app import create_app
from services.common.settings import Settings
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps
from services.notifier.portal import router as portal_router
from tests.support.api import issuer_for, new_user
from tests.support.clock import Clock
from tests.support.ids import next_email
from tests.support.notifier import School

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def portal(
    settings: Settings, notifier_engine: AsyncEngine, clock: Clock, notifier_deps: NotifierDeps
) -> AsyncIterator[httpx.AsyncClient]:
    """The portal as the notifier serves it, behind secure cookies, on the test's clock."""
    secure = settings.model_copy(update={"cookie_secure": True})
    issuer = issuer_for(settings, clock=clock)  # the TOTP codes are checked by the issuer
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=secure, engine=notifier_engine, registry=CollectorRegistry(), clock=clock,
        issuer=issuer, deps=notifier_deps))
    app.include_router(portal_router)
    transport = httpx.ASGITransport(app=app)
    async with issuer, httpx.AsyncClient(transport=transport, base_url="https://test") as client:
        yield client


async def new_dsl(settings: Settings, school: School) -> tuple[str, pyotp.TOTP]:
    """A DSL account for the school: its e-mail address and TOTP."""
    email = next_email("dsl")
    _, secret = await new_user(settings, email=email, password=PASSWORD, role="dsl",
                               school_urns=[school.urn], la_codes=[])
    return email, pyotp.TOTP(secret)


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token a portal form carries."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, clock: Clock, email: str, totp: pyotp.TOTP,
                  *, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the portal's form with the current TOTP code."""
    clock.now += timedelta(seconds=30)  # a fresh TOTP step: a used code cannot be replayed
    page = await client.get("/portal/sign-in")
    return await client.post("/portal/sign-in", data={
        "csrf": csrf_of(page), "email": email, "password": password,
        "totp": totp.at(clock.now)})
