"""Guessing is throttled at every sign-in door, together, however the login is spelt.

tests/integration/test_auth.py and test_portal.py cover one door each; here the doors are
all eight (`/v1/sessions` and `/v1/token` on four services, plus the portal form).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import httpx
import pyotp
import pytest

from tests.security.matrix import SERVICES
from tests.security.world import PASSWORD, World
from tests.support.api import basic, new_police_client, new_user
from tests.support.ids import next_email

pytestmark = pytest.mark.integration
Door = Callable[[str, str, str], Awaitable[httpx.Response]]


async def new_dsl(world: World) -> tuple[str, pyotp.TOTP]:
    """A fresh DSL: email and authenticator."""
    email = next_email("guess", "security.test")
    _, secret = await new_user(world.settings, email=email, password=PASSWORD, role="dsl",
                               school_urns=[world.params["urn"]], la_codes=[])
    return email, pyotp.TOTP(secret)


def session_door(world: World, service: str) -> Door:
    """`POST /v1/sessions` on one service."""
    async def attempt(email: str, password: str, code: str) -> httpx.Response:
        client = world.clients[service]
        client.cookies.clear()
        return await client.post("/v1/sessions", json={
            "email": email, "password": password, "totp": code})
    return attempt


def portal_door(world: World) -> Door:
    """The portal's sign-in form, with a fresh CSRF pair each time."""
    async def attempt(email: str, password: str, code: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=world.apps["notifier"])
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            page = await client.get("/portal/sign-in")
            found = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert found
            return await client.post("/portal/sign-in", data={
                "csrf": found.group(1), "email": email, "password": password, "totp": code})
    return attempt


def every_door(world: World) -> list[Door]:
    """Each place a person can sign in."""
    return [*(session_door(world, s) for s in SERVICES), portal_door(world)]


async def test_failures_at_every_door_add_up_to_one_lockout(world: World) -> None:
    email, totp = await new_dsl(world)
    doors = every_door(world)
    for i in range(world.settings.login_max_failures):
        resp = await doors[i % len(doors)](email, f"wrong guess {i}", totp.now())
        assert resp.status_code == 401
    for door in doors:  # the right password and a fresh code, at every door: still locked
        resp = await door(email, PASSWORD, totp.now())
        assert resp.status_code == 429 and resp.headers["retry-after"] == "60"
        assert "daybreak_session" not in resp.headers.get("set-cookie", "")


async def test_client_failures_at_every_service_add_up_to_one_lockout(world: World) -> None:
    client_id, secret = await new_police_client(world.settings, "WMP")
    form = {"grant_type": "client_credentials"}
    for i in range(world.settings.login_max_failures):
        client = world.clients[SERVICES[i % len(SERVICES)]]
        resp = await client.post("/v1/token", data=form, headers=basic(client_id, f"g{i}"))
        assert resp.status_code == 401
    for service in SERVICES:
        resp = await world.clients[service].post("/v1/token", data=form,
                                                 headers=basic(client_id, secret))
        assert resp.status_code == 429 and "access_token" not in resp.text


@pytest.mark.parametrize("respell", [
    lambda email, i: " " * (i + 1) + email,
    lambda email, i: "\t" * (i + 1) + email.upper(),
], ids=["leading spaces", "tabs and capitals"])
async def test_respelling_the_email_does_not_reset_the_count(
    world: World, respell: Callable[[str, int], str]
) -> None:
    email, totp = await new_dsl(world)
    door = session_door(world, "ingest")
    for i in range(world.settings.login_max_failures):
        assert (await door(respell(email, i), f"wrong guess {i}", "000000")).status_code == 401
    assert (await door(email, PASSWORD, totp.now())).status_code == 429


async def test_a_burst_of_parallel_guesses_checks_no_more_than_the_limit(
    world: World,
) -> None:
    email, totp = await new_dsl(world)
    doors = every_door(world)
    limit = world.settings.login_max_failures
    burst = await asyncio.gather(*(doors[i % len(doors)](email, f"guess {i}", "000000")
                                   for i in range(4 * limit)))
    codes = sorted(r.status_code for r in burst)
    assert codes.count(401) <= limit, f"{codes.count(401)} guesses checked, limit {limit}"
    assert set(codes) <= {401, 429}
    assert (await doors[0](email, PASSWORD, totp.now())).status_code == 429


async def test_unknown_accounts_lock_out_alike_so_none_can_be_told_apart(
    world: World,
) -> None:
    door, nobody = session_door(world, "matcher"), next_email("nobody", "x.test")
    codes = [(await door(nobody, "guess", "000000")).status_code
             for _ in range(world.settings.login_max_failures + 1)]
    assert codes == [401] * world.settings.login_max_failures + [429]
