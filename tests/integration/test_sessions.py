"""Sessions end at once: sign-out, disabling a person or a police client, a change of a
person's schools end their tokens at the identity service at once and at every other service
as soon as its revocation feed has read identity-revocations.v1 (polled, bounded), and a
service started afterwards refuses them from its first request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
import jwt
import pyotp
import pytest
from fastapi import FastAPI

from schemas import topics
from services.common.settings import Settings
from services.identity.main import build_app as build_identity
from services.ingest.main import build_app as build_ingest
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.support.api import basic, new_police_client, new_user, running
from tests.support.browser import until
from tests.support.clock import Clock
from tests.support.ids import next_email, next_urn
from tests.support.kafka import read_topic
from tests.support.portal import PASSWORD
from tests.support.tokens import identity_settings_for

pytestmark = pytest.mark.integration
PROPAGATION_S = 15  # the bound asserted: services/common/revocations.py says about a second


@dataclass
class Stack:
    """Identity (its relay running) and the services under test, each in-process."""

    identity: httpx.AsyncClient
    apps: dict[str, httpx.AsyncClient]
    identity_app: FastAPI
    clock: Clock

    async def person(self, role: str, **kwargs: list[str]) -> tuple[str, str, pyotp.TOTP]:
        """A new account: its id, e-mail address and TOTP."""
        email = next_email(role)
        access = {"school_urns": [], "la_codes": []} | kwargs
        user_id, secret = await new_user(self.identity_app.state.ctx.settings, email=email,
                                         password=PASSWORD, role=role, **access)
        return user_id, email, pyotp.TOTP(secret)

    async def sign_in(self, email: str, totp: pyotp.TOTP) -> dict[str, str]:
        """A bearer header from POST /v1/sessions (a fresh TOTP step each time)."""
        self.clock.now += timedelta(seconds=30)
        resp = await self.identity.post("/v1/sessions", json={
            "email": email, "password": PASSWORD, "totp": totp.at(self.clock.now)})
        assert resp.status_code == 200, resp.text
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def issuer_of(app: FastAPI) -> httpx.AsyncClient:
    """A client to a running in-process identity app."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://identity")


def build(name: str, settings: Settings, identity: FastAPI) -> FastAPI:
    if name == "notifier":
        return build_notifier(NotifierSettings(**settings.model_dump()),
                              issuer=issuer_of(identity))
    return build_ingest(settings, issuer=issuer_of(identity))


@asynccontextmanager
async def stack(settings: Settings, clock: Clock, *names: str) -> AsyncIterator[Stack]:
    identity_app = build_identity(identity_settings_for(settings))
    identity_app.state.ctx.clock = clock
    async with AsyncExitStack() as apps:
        identity = await apps.enter_async_context(running(identity_app))
        clients = {name: await apps.enter_async_context(
            running(build(name, settings, identity_app))) for name in names}
        yield Stack(identity, clients, identity_app, clock)


async def refused_within(client: httpx.AsyncClient, path: str, auth: dict[str, str]) -> None:
    """The token is refused (401) within the propagation bound."""
    async def refused() -> bool:
        return (await client.get(path, headers=auth)).status_code == 401

    await until(refused, seconds=PROPAGATION_S, what=f"{path} to refuse the revoked token")


async def test_signing_out_ends_the_token_everywhere_and_after_a_restart(
    settings: Settings, clock: Clock
) -> None:
    async with stack(settings, clock, "notifier") as s:
        _, email, totp = await s.person("dsl", school_urns=[next_urn()])
        auth = await s.sign_in(email, totp)
        other = await s.sign_in(email, totp)  # another session of the same person
        notifier = s.apps["notifier"]
        assert (await notifier.get("/v1/notifications", headers=auth)).status_code == 200
        ended = await s.identity.delete("/v1/sessions/current", headers=auth)
        assert ended.status_code == 204
        await refused_within(notifier, "/v1/notifications", auth)
        assert (await notifier.get("/v1/notifications", headers=other)).status_code == 200
        # the event names the session alone: an id and a time, no address
        [record] = await read_topic(settings.kafka(), settings.topic(topics.REVOCATIONS),
                                    at_least=1)
        sid = jwt.decode(auth["Authorization"][7:], options={"verify_signature": False})["sid"]
        assert record.key == sid.encode() and email.encode() not in record.value
        # a notifier started now reads the topic from its start: refused from the first call
        async with running(build("notifier", settings, s.identity_app)) as restarted:
            assert (await restarted.get("/v1/notifications", headers=auth)).status_code == 401
            assert (await restarted.get("/v1/notifications", headers=other)).status_code == 200
        assert (await s.identity.delete("/v1/sessions/current")).status_code == 401


async def test_the_issuer_refuses_an_ended_session_at_once(
    settings: Settings, clock: Clock
) -> None:
    async with stack(settings, clock) as s:
        _, email, totp = await s.person("admin")
        auth = await s.sign_in(email, totp)
        assert (await s.identity.get("/v1/users", headers=auth)).status_code == 200
        assert (await s.identity.delete("/v1/sessions/current", headers=auth)).status_code == 204
        # no wait for the topic: the issuer checks its own table
        assert (await s.identity.get("/v1/users", headers=auth)).status_code == 401


async def test_a_change_of_schools_or_disabling_ends_a_persons_tokens(
    settings: Settings, clock: Clock
) -> None:
    async with stack(settings, clock, "notifier") as s:
        _, admin_email, admin_totp = await s.person("admin")
        admin = await s.sign_in(admin_email, admin_totp)
        first, moved = next_urn(), next_urn()
        user_id, email, totp = await s.person("dsl", school_urns=[first])
        auth = await s.sign_in(email, totp)
        notifier = s.apps["notifier"]
        assert (await notifier.get("/v1/notifications", headers=auth)).status_code == 200

        same = await s.identity.put(f"/v1/users/{user_id}/access", headers=admin, json={
            "role": "dsl", "school_urns": [first], "la_codes": []})
        assert same.status_code == 200  # nothing changed: nothing ended
        assert (await notifier.get("/v1/notifications", headers=auth)).status_code == 200
        changed = await s.identity.put(f"/v1/users/{user_id}/access", headers=admin, json={
            "role": "dsl", "school_urns": [moved], "la_codes": []})
        assert changed.status_code == 200 and changed.json()["school_urns"] == [moved]
        await refused_within(notifier, "/v1/notifications", auth)
        bad = await s.identity.put(f"/v1/users/{user_id}/access", headers=admin, json={
            "role": "dsl", "school_urns": [], "la_codes": []})
        assert bad.status_code == 422

        again = await s.sign_in(email, totp)  # a new token, for the new school
        claims = jwt.decode(again["Authorization"][7:], options={"verify_signature": False})
        assert claims["schools"] == [moved]
        assert (await notifier.get("/v1/notifications", headers=again)).status_code == 200
        disabled = await s.identity.post(f"/v1/users/{user_id}/disable", headers=admin)
        assert disabled.status_code == 200
        await refused_within(notifier, "/v1/notifications", again)
        s.clock.now += timedelta(seconds=30)
        refused = await s.identity.post("/v1/sessions", json={
            "email": email, "password": PASSWORD, "totp": totp.at(s.clock.now)})
        assert refused.status_code == 401


async def test_disabling_a_police_client_ends_its_tokens(
    settings: Settings, clock: Clock
) -> None:
    async with stack(settings, clock, "ingest") as s:
        _, admin_email, admin_totp = await s.person("admin")
        admin = await s.sign_in(admin_email, admin_totp)
        client_id, secret = await new_police_client(settings, "WMP")
        got = await s.identity.post("/v1/token", data={"grant_type": "client_credentials"},
                                    headers=basic(client_id, secret))
        auth = {"Authorization": f"Bearer {got.json()['access_token']}"}
        ingest, path = s.apps["ingest"], f"/v1/incidents/{uuid.uuid4()}"
        assert (await ingest.get(path, headers=auth)).status_code == 404  # let in: none such
        disabled = await s.identity.post(f"/v1/clients/{client_id}/disable", headers=admin)
        assert disabled.status_code == 200
        await refused_within(ingest, path, auth)
