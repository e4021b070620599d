"""The portal's "Your sessions" pages: the person's own sessions, this one marked; a sign-out
asks the password and a new code again (CSRF-checked, each missing answer named, a wrong one
refused); signing out of this very session signs out here."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
import pytest

from services.common.settings import Settings
from tests.support.clock import Clock
from tests.support.ids import next_urn
from tests.support.portal import PASSWORD, csrf_of, new_person, sign_in

pytestmark = pytest.mark.integration


async def test_the_sessions_pages_ask_the_password_again(
    portal: httpx.AsyncClient, settings: Settings, clock: Clock
) -> None:
    email, totp = await new_person(settings, "dsl", schools=[next_urn()])
    assert (await portal.get("/portal/sessions")).headers["location"] == "/portal/sign-in"
    await sign_in(portal, clock, email, totp)
    listed = await portal.get("/portal/sessions")
    assert listed.status_code == 200 and "This session" in listed.text
    [sid] = re.findall(r'href="/portal/sessions/([0-9a-f-]{36})/end"', listed.text)
    assert "Sign out everywhere else" not in listed.text  # no other session to end
    missing = await portal.get(f"/portal/sessions/{uuid.uuid4()}/end")
    assert missing.status_code == 404
    path = f"/portal/sessions/{sid}/end"
    form = await portal.get(path)
    assert form.status_code == 200 and 'autocomplete="current-password"' in form.text
    forged = await portal.post(path, data={"csrf": "forged", "password": PASSWORD})
    assert forged.status_code == 403
    empty = await portal.post(path, data={"csrf": csrf_of(form)})
    assert empty.status_code == 422
    assert 'href="#password">Enter your password' in empty.text
    assert 'href="#totp">Enter the 6-digit code' in empty.text
    clock.now += timedelta(seconds=30)
    wrong = await portal.post(path, data={"csrf": csrf_of(form), "password": "not it at all",
                                          "totp": totp.at(clock.now)})
    assert wrong.status_code == 403 and "The password or code is wrong" in wrong.text
    clock.now += timedelta(seconds=30)
    others = await portal.post("/portal/sessions/others/end", data={
        "csrf": csrf_of(form), "password": PASSWORD, "totp": totp.at(clock.now)})
    assert others.headers["location"] == "/portal/sessions?done=others"
    clock.now += timedelta(seconds=30)
    ended = await portal.post(path, data={"csrf": csrf_of(form), "password": PASSWORD,
                                          "totp": totp.at(clock.now)})
    assert (ended.status_code, ended.headers["location"]) == (303, "/portal/sign-in")
    assert (await portal.get("/portal/sessions")).headers["location"] == "/portal/sign-in"
