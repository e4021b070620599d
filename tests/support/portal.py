"""The portal in-process (the `portal` fixture, `portal_client` with a matcher for the review
pages), people's accounts and signing in."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.app import create_app
from services.common.settings import Settings
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps
from services.notifier.models import emails, sign_in_links
from services.notifier.portal import router as portal_router
from tests.support.api import issuer_for, new_user
from tests.support.clock import Clock
from tests.support.ids import next_email
from tests.support.notifier import School

PASSWORD = "correct horse battery staple"


@asynccontextmanager
async def portal_client(
    settings: Settings, engine: AsyncEngine, clock: Clock, deps: NotifierDeps, *,
    matcher: FastAPI | None = None, audit: FastAPI | None = None, address: str = "127.0.0.1",
) -> AsyncIterator[httpx.AsyncClient]:
    """A client to the portal as the notifier serves it, behind secure cookies, on the clock;
    its review pages call `matcher` and its auditor pages `audit` (apps in-process) when
    given; its requests come from `address`."""
    secure = settings.model_copy(update={"cookie_secure": True})
    issuer = issuer_for(settings, clock=clock)  # the TOTP codes are checked by the issuer
    reviews = None if matcher is None else httpx.AsyncClient(
        transport=httpx.ASGITransport(app=matcher), base_url="http://matcher")
    log = None if audit is None else httpx.AsyncClient(
        transport=httpx.ASGITransport(app=audit), base_url="http://audit")
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=secure, engine=engine, registry=CollectorRegistry(), clock=clock,
        issuer=issuer, deps=deps, matcher_api=reviews, audit_api=log))
    app.include_router(portal_router)
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with issuer, httpx.AsyncClient(transport=transport, base_url="https://test") as client:
        yield client
    for called in (reviews, log):
        if called is not None:
            await called.aclose()


@pytest.fixture
async def portal(
    settings: Settings, notifier_engine: AsyncEngine, clock: Clock, notifier_deps: NotifierDeps
) -> AsyncIterator[httpx.AsyncClient]:
    """The portal as the notifier serves it, behind secure cookies, on the test's clock."""
    async with portal_client(settings, notifier_engine, clock, notifier_deps) as client:
        yield client


async def new_person(settings: Settings, role: str, *, schools: list[str] | None = None,
                     las: list[str] | None = None) -> tuple[str, pyotp.TOTP]:
    """An account for a person of the role: its e-mail address and TOTP."""
    email = next_email(role)
    _, secret = await new_user(settings, email=email, password=PASSWORD, role=role,
                               school_urns=schools or [], la_codes=las or [])
    return email, pyotp.TOTP(secret)


async def new_dsl(settings: Settings, school: School) -> tuple[str, pyotp.TOTP]:
    """A DSL account for the school: its e-mail address and TOTP."""
    return await new_person(settings, "dsl", schools=[school.urn])


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


async def emailed_link(engine: AsyncEngine, to: list[str], *, now: datetime,
                       role: str = "dsl") -> str:
    """A sign-in link as the dispatcher leaves one: its e-mail (sent to `to`) and its token."""
    token = secrets.token_urlsafe(32)
    email_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(emails.insert().values(
            id=email_id, kind="notice", to_addrs={"role": role, "to": to}, subject_name="x",
            count=1, status="sent", next_attempt_at=now, created_at=now, sent_at=now))
        await conn.execute(sign_in_links.insert().values(
            token_hash=hashlib.sha256(token.encode()).hexdigest(), email_id=email_id,
            expires_at=now + timedelta(hours=1)))
    return token


async def link_used(engine: AsyncEngine, token: str) -> bool:
    """Whether the sign-in link has been used."""
    async with engine.connect() as conn:
        used_at = (await conn.execute(select(sign_in_links.c.used_at).where(
            sign_in_links.c.token_hash == hashlib.sha256(token.encode()).hexdigest()))
        ).scalar_one()
    return used_at is not None
