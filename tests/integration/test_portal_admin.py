"""The admin's portal pages in-process: each calls the owning service (ingest, matcher,
identity) with the admin's own token; one-time secrets are shown once, never in a URL; rolls'
row errors come back as an error summary; nobody but an admin gets in."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import pyotp
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.app import create_app
from services.common.settings import Settings
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps
from services.notifier.portal import router as portal_router
from tests.support.api import issuer_for
from tests.support.clock import Clock
from tests.support.directory import notifier_knows_la
from tests.support.ids import next_la, next_urn
from tests.support.portal import PASSWORD, csrf_of, new_person, sign_in
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
HEADER = ("urn,upn,given_name,preferred_name,family_name,former_family_name,date_of_birth,"
          "gender,address_line1,postcode,enrolment_status,on_roll_from,on_roll_to\n")


def roster(urn: str, born: str = "2016-04-01") -> bytes:
    return (HEADER + f"{urn},,Amy,,Example,,2015-02-03,F,,,C,,\n"
            f"{urn},,Ben,,Example,,{born},M,,,C,,\n").encode()


def in_process(app: Any, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


@pytest.fixture
async def services(settings: Settings, clock: Clock) -> AsyncIterator[dict[str, Any]]:
    """The matcher's and ingest's routes (no consumers) on the test's clock."""
    apps = {"matcher": build_matcher(settings), "ingest": build_ingest(settings)}
    for app in apps.values():
        app.state.ctx.clock = clock
    yield apps
    for app in apps.values():
        await app.state.ctx.engine.dispose()


@pytest.fixture
async def portal(settings: Settings, notifier_engine: AsyncEngine, clock: Clock,
                 notifier_deps: NotifierDeps, services: dict[str, Any]
                 ) -> AsyncIterator[httpx.AsyncClient]:
    """The portal, its admin pages calling matcher, ingest and identity in-process."""
    secure = settings.model_copy(update={"cookie_secure": True})
    issuer = issuer_for(settings, clock=clock)
    ctx = NotifierContext(settings=secure, engine=notifier_engine, registry=CollectorRegistry(),
                          clock=clock, issuer=issuer, deps=notifier_deps,
                          matcher_api=in_process(services["matcher"], "matcher"),
                          ingest_api=in_process(services["ingest"], "ingest"))
    app = create_app(title="notifier", service="notifier", ctx=ctx)
    app.include_router(portal_router)
    async with issuer, httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="https://test") as client:
        yield client


@pytest.fixture
async def admin(settings: Settings, portal: httpx.AsyncClient, clock: Clock
                ) -> httpx.AsyncClient:
    """The portal, signed in as an admin, who lands on the admin pages."""
    email, totp = await new_person(settings, "admin")
    signed = await sign_in(portal, clock, email, totp)
    assert signed.status_code == 303
    home = await portal.get("/portal/", follow_redirects=True)
    assert str(home.url).endswith("/portal/admin") and "Admin" in home.text
    return portal


async def post(client: httpx.AsyncClient, page: str, action: str, data: dict[str, str],
               files: dict[str, Any] | None = None) -> httpx.Response:
    form = await client.get(page)
    return await client.post(action, data=data | {"csrf": csrf_of(form)}, files=files)


async def test_an_admin_keeps_a_force_at_ingest(admin, services) -> None:
    opened = await admin.get("/portal/admin/forces", params={"code": "wmp"})
    assert opened.status_code == 303 and opened.headers["location"].endswith("/forces/WMP")
    la = next_la()
    saved = await post(admin, "/portal/admin/forces/WMP", "/portal/admin/forces/WMP", {
        "name": "West Midlands Police", "field-summary": "yes", "field-voice_of_child": "yes",
        "default_la_code": la})
    assert saved.status_code == 303, saved.text
    async with in_process(services["ingest"], "ingest") as ingest:
        stored = (await ingest.get("/v1/forces/WMP", headers=bearer(person("admin")))).json()
    assert stored["default_la_code"] == la
    assert set(stored["disclosure_profile"]["fields"]) == {"summary", "voice_of_child"}
    listed = await admin.get("/portal/admin/forces")
    assert "WMP" in listed.text and la in listed.text
    nameless = await post(admin, "/portal/admin/forces/WMP", "/portal/admin/forces/WMP",
                          {"name": ""})
    assert nameless.status_code == 422 and "Enter the force" in nameless.text


async def test_a_school_its_roll_and_the_row_errors(admin, settings, notifier_engine) -> None:
    la, urn = next_la(), next_urn()
    await notifier_knows_la(notifier_engine, la)
    made = await post(admin, f"/portal/admin/local-authorities/{la}",
                      f"/portal/admin/local-authorities/{la}", {
                          "name": "Test LA", "contacts-0-role": "safeguarding",
                          "contacts-0-name": "Lado", "contacts-0-email": "lado@la.test"})
    assert made.status_code == 303, made.text
    saved = await post(admin, f"/portal/admin/schools/{urn}", f"/portal/admin/schools/{urn}", {
        "name": "Oak Road Primary", "la_code": la, "participates": "yes",
        "day_starts_at": "08:40", "contacts-0-role": "dsl", "contacts-0-name": "Dee",
        "contacts-0-email": "dee@school.test"})
    assert saved.status_code == 303, saved.text
    page = f"/portal/admin/schools/{urn}"
    bad = await post(admin, page, f"{page}/roster", {},
                     {"file": ("roll.csv", roster(urn, born="2016-13-01"), "text/csv")})
    assert bad.status_code == 422
    assert re.search(r"Row 3: date_of_birth: must be a date", bad.text), bad.text
    assert 'href="#roster-file"' in bad.text and "Ben" not in bad.text
    good = await post(admin, page, f"{page}/roster", {},
                      {"file": ("roll.csv", roster(urn), "text/csv")})
    assert good.status_code == 303 and good.headers["location"] == f"{page}?roster=2"
    shown = await admin.get(good.headers["location"])
    assert "Roll replaced: 2 pupils." in shown.text and "Oak Road Primary" in shown.text
    nothing = await post(admin, page, f"{page}/roster", {})
    assert nothing.status_code == 422 and "Choose a file" in nothing.text
    calendar = await post(admin, page, f"{page}/calendar", {}, {
        "file": ("days.csv", f"urn,date,kind\n{urn},2026-12-07,closed\n".encode(), "text/csv")})
    assert calendar.status_code == 200 and "Calendar replaced: 1 days." in calendar.text


async def page_listing(admin: httpx.AsyncClient, email: str) -> httpx.Response:
    """The page of the people listing (50 a page, by e-mail address) that shows `email`,
    following the Next links: the session's database holds every test's people."""
    listed = await admin.get("/portal/admin/users", params={"cursor": ""})
    for _ in range(100):
        assert listed.status_code == 200, listed.text
        if f">{email}<" in listed.text:
            return listed
        more = re.search(r'href="/portal/admin/users\?cursor=([^"]+)" rel="next"', listed.text)
        assert more, f"{email} is on no page of the listing"
        listed = await admin.get("/portal/admin/users",
                                 params={"cursor": html.unescape(unquote(more.group(1)))})
    raise AssertionError("the listing never ended")


async def test_people_are_added_shown_their_secrets_once_and_disabled(
    admin, portal, clock
) -> None:
    created = await post(admin, "/portal/admin/users", "/portal/admin/users", {
        "email": "new.dsl@school.test", "role": "dsl", "school_urns": next_urn()})
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    assert "/portal/admin/users" in str(created.url)
    password = re.search(r'id="password">([^<]+)<', created.text)
    key = re.search(r'id="setup-key">([^<]+)<', created.text)
    assert password and key and "shown once" in created.text
    again = await post(admin, "/portal/admin/users", "/portal/admin/users", {
        "email": "new.dsl@school.test", "role": "dsl", "school_urns": next_urn()})
    assert again.status_code == 409 and "already exists" in again.text
    listed = await page_listing(admin, "new.dsl@school.test")
    assert password.group(1) not in listed.text
    row = listed.text[listed.text.index(">new.dsl@school.test<"):]
    user_id = re.search(r'/portal/admin/users/([0-9a-f-]{36})/disable"', row)
    assert user_id, listed.text
    off = await post(admin, "/portal/admin/users", f"/portal/admin/users/{user_id.group(1)}/"
                     "disable", {})
    assert off.status_code == 303 and off.headers["location"].endswith("done=disabled")
    clock.now += timedelta(seconds=30)
    async with httpx.AsyncClient(transport=portal._transport, base_url="https://test") as them:
        refused = await sign_in(them, clock, "new.dsl@school.test", pyotp.TOTP(key.group(1)),
                                password=password.group(1))
    assert refused.status_code == 401


async def test_a_police_client_and_its_rotated_secret(admin) -> None:
    made = await post(admin, "/portal/admin/clients", "/portal/admin/clients",
                      {"force_code": "GMP"})
    assert made.status_code == 200
    client_id = re.search(r'id="client-id">([^<]+)<', made.text)
    first = re.search(r'id="client-secret">([^<]+)<', made.text)
    assert client_id and first
    rotated = await post(admin, "/portal/admin/clients",
                         f"/portal/admin/clients/{client_id.group(1)}/rotate-secret", {})
    second = re.search(r'id="client-secret">([^<]+)<', rotated.text)
    assert second and second.group(1) != first.group(1)
    listed = await admin.get("/portal/admin/clients")
    assert client_id.group(1) in listed.text and second.group(1) not in listed.text
    bad = await post(admin, "/portal/admin/clients", "/portal/admin/clients",
                     {"force_code": "G1"})
    assert bad.status_code == 422 and "force code" in bad.text


async def test_dead_deliveries_and_the_sections_are_shown(admin) -> None:
    dead = await admin.get("/portal/admin/dead-deliveries")
    assert dead.status_code == 200 and "Dead deliveries" in dead.text
    for path in ("/portal/admin", "/portal/admin/schools", "/portal/admin/local-authorities"):
        assert (await admin.get(path)).status_code == 200, path


async def test_nobody_else_gets_the_admin_pages(portal, settings, clock) -> None:
    email, totp = await new_person(settings, "dsl", schools=[next_urn()])
    await sign_in(portal, clock, email, totp, password=PASSWORD)
    for path in ("/portal/admin", "/portal/admin/users", "/portal/admin/schools/103456"):
        refused = await portal.get(path)
        assert refused.status_code == 303 and refused.headers["location"] == "/portal/sign-in"
    assert (await portal.get("/portal/sign-in")).status_code == 200  # a DSL stays put


async def test_a_form_without_its_csrf_token_is_refused(admin) -> None:
    refused = await admin.post("/portal/admin/clients", data={"force_code": "GMP"})
    assert refused.status_code == 403
