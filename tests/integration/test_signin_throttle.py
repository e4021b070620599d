"""Failed sign-ins are counted per login and address, per address and per login, so nobody can
lock a DSL out with five guesses, nor spray one address's guesses over many logins; the
address is the relay's word only when the relay is trusted (issue 15 finding 1)."""

from __future__ import annotations

import httpx
import pyotp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.settings import Settings
from services.identity.settings import IdentitySettings
from services.ingest.main import build_app as build_ingest
from services.notifier.handlers import NotifierDeps
from tests.support.api import issuer_for, new_user
from tests.support.clock import Clock
from tests.support.ids import next_address, next_email, next_urn
from tests.support.portal import portal_client, sign_in
from tests.support.signin import (
    client_from,
    events_for,
    identity_app,
    signin_settings,
)

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


async def new_dsl(settings: Settings) -> tuple[str, pyotp.TOTP]:
    """A fresh DSL: e-mail address and authenticator."""
    email = next_email("dsl")
    _, secret = await new_user(settings, email=email, password=PASSWORD, role="dsl",
                               school_urns=[next_urn()], la_codes=[])
    return email, pyotp.TOTP(secret)


async def session(http: httpx.AsyncClient, email: str, password: str, code: str) -> int:
    """The status of one `POST /v1/sessions`."""
    answer = await http.post("/v1/sessions", json={"email": email, "password": password,
                                                   "totp": code})
    return answer.status_code


async def test_a_strangers_five_guesses_lock_only_the_stranger_out(settings: Settings) -> None:
    email, totp = await new_dsl(settings)
    async with identity_app(signin_settings(settings)) as app, \
            client_from(app, next_address()) as stranger, \
            client_from(app, next_address()) as school:
        for i in range(5):
            assert await session(stranger, email, f"guess {i}", "000000") == 401
        assert await session(stranger, email, PASSWORD, totp.now()) == 429
        assert await session(school, email, PASSWORD, totp.now()) == 200


async def test_one_address_cannot_spray_guesses_over_many_logins(settings: Settings) -> None:
    email, totp = await new_dsl(settings)
    budget = signin_settings(settings, login_address_max_failures=6)
    async with identity_app(budget) as app, client_from(app, next_address()) as sprayer, \
            client_from(app, next_address()) as school:
        for _ in range(6):  # one guess at each of six logins: no login's own count is near 5
            assert await session(sprayer, next_email("sprayed"), "guess", "000000") == 401
        assert await session(sprayer, email, PASSWORD, totp.now()) == 429
        assert await session(school, email, PASSWORD, totp.now()) == 200


async def test_a_login_has_a_ceiling_over_every_address(settings: Settings) -> None:
    email, totp = await new_dsl(settings)
    async with identity_app(signin_settings(settings, login_account_max_failures=4)) as app:
        for _ in range(2):
            async with client_from(app, next_address()) as guesser:
                for i in range(2):
                    assert await session(guesser, email, f"guess {i}", "000000") == 401
        async with client_from(app, next_address()) as school:
            assert await session(school, email, PASSWORD, totp.now()) == 429


async def test_only_a_trusted_relay_names_the_address(settings: Settings) -> None:
    email, claimed = next_email("nobody"), next_address()
    peer, relayed = next_address(), next_address()
    header = "X-Daybreak-Client-Address"
    async with identity_app(signin_settings(settings)) as app:
        async with client_from(app, peer) as untrusted:
            await untrusted.post("/v1/sessions", headers={header: claimed}, json={
                "email": email, "password": "guess", "totp": "000000"})
        async with client_from(app, "127.0.0.1") as relay:
            await relay.post("/v1/sessions", headers={header: relayed}, json={
                "email": email, "password": "guess", "totp": "000000"})
    assert [e.client_address for e in await events_for(settings, f"user:{email}")] == [
        peer, relayed]


async def test_the_relay_and_the_portal_pass_on_the_callers_address(
    settings: Settings, notifier_engine: AsyncEngine, clock: Clock, notifier_deps: NotifierDeps,
) -> None:
    email, totp = await new_dsl(settings)
    by_api, by_portal = next_address(), next_address()
    ingest = build_ingest(settings, issuer=issuer_for(settings))
    async with ingest.router.lifespan_context(ingest), \
            client_from(ingest, by_api, base_url="http://ingest") as api:
        spoofed = await api.post("/v1/sessions", headers={  # the relay's word replaces it
            "X-Daybreak-Client-Address": next_address()}, json={
                "email": email, "password": "guess", "totp": "000000"})
        assert spoofed.status_code == 401
    async with portal_client(settings, notifier_engine, clock, notifier_deps,
                             address=by_portal) as portal:
        answer = await sign_in(portal, clock, email, totp, password="wrong password!")
        assert answer.status_code == 401
    events = await events_for(settings, f"user:{email}")
    assert [(e.client_address, e.outcome) for e in events] == [
        (by_api, "failure"), (by_portal, "failure")]


def test_the_default_budgets_are_the_documented_ones() -> None:
    budgets = IdentitySettings(env="development").sign_in_policy().budgets
    assert (budgets.per_pair, budgets.per_address, budgets.per_login) == (5, 20, 100)
    assert budgets.window.total_seconds() == 15 * 60
