"""E-mailed sign-in links: looking at one (an e-mail scanner's GET) uses nothing; only a POST
from the person it was sent to uses it, signed in already or signing in on its page."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.auth_api import SESSION_COOKIE
from services.common.settings import Settings
from tests.support.clock import Clock
from tests.support.notifier import add_school
from tests.support.portal import (
    PASSWORD,
    csrf_of,
    emailed_link,
    link_used,
    new_dsl,
    new_person,
    sign_in,
)

pytestmark = pytest.mark.integration


def _form(page: httpx.Response) -> dict[str, str]:
    """The hidden fields of the page's link form (CSRF token and the link's token)."""
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token, page.text
    return {"csrf": csrf_of(page), "token": token.group(1)}


async def test_looking_uses_nothing_and_its_person_signs_in_through_it(
    engine: AsyncEngine, clock: Clock, portal: httpx.AsyncClient, settings: Settings
) -> None:
    school = await add_school(engine)
    email, totp = await new_dsl(settings, school)
    token = await emailed_link(engine, [email.upper()], now=clock.now)
    for url in (f"/portal/link/{token}", f"/portal/sign-in?token={token}"):
        for _ in range(2):  # the scanner, then the person: neither GET uses it
            shown = await portal.get(url)
            assert shown.status_code == 200 and 'action="/portal/link"' in shown.text
            assert "Sign in to read your new notifications" in shown.text
    assert not await link_used(engine, token)
    assert SESSION_COOKIE not in portal.cookies
    forged = await portal.post("/portal/link", data=_form(shown) | {"csrf": "forged"})
    assert forged.status_code == 403 and not await link_used(engine, token)

    clock.now += timedelta(seconds=30)  # a fresh TOTP step
    used = await portal.post("/portal/link", data=_form(shown) | {
        "email": email, "password": PASSWORD, "totp": totp.at(clock.now)})
    assert used.status_code == 303 and used.headers["location"] == "/portal/"
    assert await link_used(engine, token) and SESSION_COOKIE in portal.cookies
    again = await portal.get(f"/portal/link/{token}")
    assert again.headers["location"] == "/portal/sign-in?link=expired"


async def test_a_wrong_password_on_the_links_page_keeps_the_link(
    engine: AsyncEngine, clock: Clock, portal: httpx.AsyncClient, settings: Settings
) -> None:
    school = await add_school(engine)
    email, totp = await new_dsl(settings, school)
    token = await emailed_link(engine, [email], now=clock.now)
    shown = await portal.get(f"/portal/link/{token}")
    wrong = await portal.post("/portal/link", data=_form(shown) | {
        "email": email, "password": "not the password", "totp": totp.at(clock.now)})
    assert wrong.status_code == 401 and 'name="token"' in wrong.text
    assert not await link_used(engine, token)


async def test_only_the_person_it_was_sent_to_can_use_it(
    engine: AsyncEngine, clock: Clock, portal: httpx.AsyncClient, settings: Settings
) -> None:
    school = await add_school(engine)
    dsl_email, _ = await new_dsl(settings, school)
    deputy_email, deputy_totp = await new_person(settings, "deputy_dsl", schools=[school.urn])
    token = await emailed_link(engine, [dsl_email], now=clock.now)

    # signing in on the link's page as someone else (a colleague reading a shared mailbox):
    # signed in as on the sign-in form, the link left for its person
    shown = await portal.get(f"/portal/link/{token}")
    clock.now += timedelta(seconds=30)
    other = await portal.post("/portal/link", data=_form(shown) | {
        "email": deputy_email, "password": PASSWORD, "totp": deputy_totp.at(clock.now)})
    assert other.status_code == 303 and other.headers["location"] == "/portal/"
    assert not await link_used(engine, token) and SESSION_COOKIE in portal.cookies

    # signed in already as someone else: the page says so and offers no button
    page = await portal.get(f"/portal/link/{token}")
    assert page.status_code == 200 and "sent to someone else" in page.text
    assert 'name="token"' not in page.text
    refused = await portal.post("/portal/link", data={"csrf": csrf_of(page), "token": token})
    assert refused.status_code == 403 and not await link_used(engine, token)


async def test_signed_in_as_its_person_a_button_uses_it(
    engine: AsyncEngine, clock: Clock, portal: httpx.AsyncClient, settings: Settings
) -> None:
    school = await add_school(engine)
    email, totp = await new_dsl(settings, school)
    await sign_in(portal, clock, email, totp)
    token = await emailed_link(engine, ["someone.else@school.test", email], now=clock.now)
    page = await portal.get(f"/portal/link/{token}")
    assert page.status_code == 200 and "Open notifications" in page.text
    assert not await link_used(engine, token)
    used = await portal.post("/portal/link", data=_form(page))
    assert used.status_code == 303 and used.headers["location"] == "/portal/"
    assert await link_used(engine, token)
