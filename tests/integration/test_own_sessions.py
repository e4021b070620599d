"""A person's own sessions (ASVS 7.5.2): `GET /v1/sessions` lists the caller's own, how and
where each was signed in, the current one marked, a page at a time; `POST
/v1/sessions/{sid}/end` and `POST /v1/sessions/end-others` end them once the password and a
new code are given again (throttled as sign-in is), never another person's (404), each end a
security event and a revocation the issuer applies at once and publishes by `sid`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import jwt
import pyotp
import pytest
from fastapi import FastAPI

from schemas import topics
from services.common.settings import Settings
from tests.support.api import new_police_client, new_user, police_token
from tests.support.clock import Clock
from tests.support.ids import next_email, next_urn
from tests.support.kafka import read_topic
from tests.support.portal import PASSWORD
from tests.support.signin import client_from, events_for, identity_app, signin_settings

pytestmark = pytest.mark.integration
AGENT = "Mozilla/5.0 (test) Daybreak-sessions"


@dataclass
class Person:
    email: str
    totp: pyotp.TOTP


@dataclass
class Issuer:
    """The identity service in-process on the test's clock, called from 192.0.2.7."""

    http: httpx.AsyncClient
    app: FastAPI
    clock: Clock
    settings: Settings

    async def person(self, role: str = "dsl", **access: list[str]) -> Person:
        email = next_email(role)
        given = {"school_urns": [next_urn()] if role == "dsl" else [], "la_codes": []} | access
        _, secret = await new_user(self.settings, email=email, password=PASSWORD, role=role,
                                   **given)
        return Person(email, pyotp.TOTP(secret))

    def code(self, person: Person) -> str:
        """A code of a new TOTP step (a used one cannot be replayed)."""
        self.clock.now += timedelta(seconds=30)
        return person.totp.at(self.clock.now)

    async def sign_in(self, person: Person) -> dict[str, str]:
        resp = await self.http.post("/v1/sessions", headers={"User-Agent": AGENT}, json={
            "email": person.email, "password": PASSWORD, "totp": self.code(person)})
        assert resp.status_code == 200, resp.text
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    async def again(self, person: Person, password: str = PASSWORD) -> dict[str, str]:
        """The body that asks the password and a new code again."""
        return {"password": password, "totp": self.code(person)}


@pytest.fixture
async def issuer(settings: Settings, clock: Clock) -> AsyncIterator[Issuer]:
    async with identity_app(signin_settings(settings), clock=clock) as app, \
            client_from(app, "192.0.2.7") as http:
        yield Issuer(http, app, clock, settings)


def sid_of(auth: dict[str, str]) -> str:
    sid: str = jwt.decode(auth["Authorization"][7:], options={"verify_signature": False})["sid"]
    return sid


async def test_a_person_lists_their_own_sessions_a_page_at_a_time(issuer: Issuer) -> None:
    me, someone = await issuer.person(), await issuer.person()
    first, second = await issuer.sign_in(me), await issuer.sign_in(me)
    theirs = await issuer.sign_in(someone)
    resp = await issuer.http.get("/v1/sessions", headers=first)
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["next_cursor"] is None
    assert [s["id"] for s in body["items"]] == [sid_of(second), sid_of(first)]  # newest first
    assert [s["current"] for s in body["items"]] == [False, True]
    assert {(s["method"], s["client_address"], s["user_agent"]) for s in body["items"]} == {
        ("password", "192.0.2.7", AGENT)}
    assert sid_of(theirs) not in resp.text and someone.email not in resp.text
    page = await issuer.http.get("/v1/sessions", headers=second, params={"limit": 1})
    [newest] = page.json()["items"]
    assert newest["id"] == sid_of(second) and newest["current"]
    rest = await issuer.http.get("/v1/sessions", headers=second, params={
        "limit": 1, "cursor": page.json()["next_cursor"]})
    assert [s["id"] for s in rest.json()["items"]] == [sid_of(first)]
    assert rest.json()["next_cursor"] is None
    bad = await issuer.http.get("/v1/sessions", headers=first, params={"cursor": "bm9wZQ"})
    assert bad.status_code == 422


async def test_only_a_persons_live_token_opens_the_list(issuer: Issuer) -> None:
    anonymous = await issuer.http.get("/v1/sessions")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    client_id, secret = await new_police_client(issuer.settings, "WMP")
    token = await police_token(issuer.http, client_id, secret)
    client = await issuer.http.get("/v1/sessions", headers={"Authorization": f"Bearer {token}"})
    assert client.status_code == 403
    assert client.headers["content-type"].startswith("application/problem+json")


async def test_ending_one_session_refuses_its_tokens_at_once_and_publishes_it(
    issuer: Issuer, settings: Settings
) -> None:
    admin = await issuer.person("admin")
    here, there = await issuer.sign_in(admin), await issuer.sign_in(admin)
    assert (await issuer.http.get("/v1/users", headers=there)).status_code == 200
    resp = await issuer.http.post(f"/v1/sessions/{sid_of(there)}/end", headers=here,
                                  json=await issuer.again(admin))
    assert resp.status_code == 204, resp.text
    # the issuer checks its own table: no wait for the topic
    assert (await issuer.http.get("/v1/users", headers=there)).status_code == 401
    assert (await issuer.http.get("/v1/sessions", headers=there)).status_code == 401
    assert (await issuer.http.get("/v1/users", headers=here)).status_code == 200
    listed = (await issuer.http.get("/v1/sessions", headers=here)).json()["items"]
    assert [s["id"] for s in listed] == [sid_of(here)]
    # ended already: nothing to end
    again = await issuer.http.post(f"/v1/sessions/{sid_of(there)}/end", headers=here,
                                   json=await issuer.again(admin))
    assert again.status_code == 404
    [record] = await read_topic(settings.kafka(), settings.topic(topics.REVOCATIONS),
                                at_least=1)
    assert record.key == sid_of(there).encode() and admin.email.encode() not in record.value
    kinds = [(e.kind, e.outcome) for e in await events_for(settings, f"user:{admin.email}")]
    assert kinds.count(("reauthentication", "success")) == 2
    assert kinds.count(("session_end", "success")) == 1


async def test_another_persons_session_is_not_found_even_with_the_right_password(
    issuer: Issuer
) -> None:
    me, someone = await issuer.person(), await issuer.person()
    mine, theirs = await issuer.sign_in(me), await issuer.sign_in(someone)
    for sid in (sid_of(theirs), "not-a-session", "00000000-0000-0000-0000-000000000000"):
        resp = await issuer.http.post(f"/v1/sessions/{sid}/end", headers=mine,
                                      json=await issuer.again(me))
        assert resp.status_code == 404, sid
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert sid_of(theirs) not in resp.text
    assert (await issuer.http.get("/v1/sessions", headers=theirs)).status_code == 200


async def test_a_wrong_password_or_code_is_refused_and_throttled_like_sign_in(
    issuer: Issuer, settings: Settings
) -> None:
    me = await issuer.person()
    mine, other = await issuer.sign_in(me), await issuer.sign_in(me)
    path = f"/v1/sessions/{sid_of(other)}/end"
    replayed = {"password": PASSWORD, "totp": me.totp.at(issuer.clock.now)}  # the sign-in's
    assert (await issuer.http.post(path, headers=mine, json=replayed)).status_code == 403
    for _ in range(4):  # five failures in all: the login's budget from this address
        wrong = await issuer.http.post(path, headers=mine,
                                       json=await issuer.again(me, "not my password at all"))
        assert wrong.status_code == 403
        assert wrong.headers["content-type"].startswith("application/problem+json")
    throttled = await issuer.http.post(path, headers=mine, json=await issuer.again(me))
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "60"
    # the same budget as signing in: that is refused too now
    signing_in = await issuer.http.post("/v1/sessions", json={
        "email": me.email, "password": PASSWORD, "totp": issuer.code(me)})
    assert signing_in.status_code == 429
    assert (await issuer.http.get("/v1/sessions", headers=other)).status_code == 200
    kinds = [(e.kind, e.outcome) for e in await events_for(settings, f"user:{me.email}")]
    assert kinds.count(("reauthentication", "failure")) == 5
    assert ("reauthentication", "throttled") in kinds and ("session_end", "success") not in kinds


async def test_ending_every_other_session_keeps_this_one(
    issuer: Issuer, settings: Settings
) -> None:
    me, someone = await issuer.person(), await issuer.person()
    here = await issuer.sign_in(me)
    others = [await issuer.sign_in(me), await issuer.sign_in(me)]
    theirs = await issuer.sign_in(someone)
    refused = await issuer.http.post("/v1/sessions/end-others", headers=here,
                                     json=await issuer.again(me, "not my password at all"))
    assert refused.status_code == 403
    resp = await issuer.http.post("/v1/sessions/end-others", headers=here,
                                  json=await issuer.again(me))
    assert resp.status_code == 200 and resp.json() == {"ended": 2}
    for auth in others:
        assert (await issuer.http.get("/v1/sessions", headers=auth)).status_code == 401
    listed = (await issuer.http.get("/v1/sessions", headers=here)).json()["items"]
    assert [s["id"] for s in listed] == [sid_of(here)]
    assert (await issuer.http.get("/v1/sessions", headers=theirs)).status_code == 200
    records = await read_topic(settings.kafka(), settings.topic(topics.REVOCATIONS),
                               at_least=2)
    assert sorted(r.key for r in records) == sorted(sid_of(a).encode() for a in others)
