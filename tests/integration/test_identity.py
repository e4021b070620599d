"""The identity service in-process: its endpoints, its JWKS, and the relays in front of it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import jwt
import pyotp
import pytest

from services.common.jwks import parse_jwks
from services.common.settings import Settings
from services.identity.main import build_app as build_identity
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from tests.support.api import basic, issuer_for, new_police_client, new_user, running
from tests.support.ids import next_email
from tests.support.incidents import incident_body
from tests.support.tokens import KEYSET, bearer, identity_settings_for, police

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"
FORM = {"grant_type": "client_credentials"}


@pytest.fixture
async def identity(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(build_identity(identity_settings_for(settings))) as client:
        yield client


async def new_dsl(settings: Settings) -> tuple[str, pyotp.TOTP]:
    email = next_email("dsl")
    _, totp = await new_user(settings, email=email, password=PASSWORD, role="dsl",
                             school_urns=["103456"], la_codes=[])
    return email, pyotp.TOTP(totp)


async def test_the_jwks_publishes_every_listed_key_and_no_private_part(identity) -> None:
    resp = await identity.get("/.well-known/jwks.json")
    assert resp.status_code == 200 and "max-age" in resp.headers["cache-control"]
    keys = resp.json()["keys"]
    assert [k["kid"] for k in keys] == KEYSET.kids
    assert all(set(k) == {"kty", "crv", "x", "kid", "alg", "use"} for k in keys)
    assert set(parse_jwks(resp.content)) == set(KEYSET.kids)


async def test_a_police_token_is_eddsa_for_ingest_alone(identity, settings) -> None:
    resp = await identity.post("/v1/token", data=FORM,
                               headers=basic(*await new_police_client(settings, "WMP")))
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    token = resp.json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == KEYSET.active_kid
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == ["ingest"] and claims["force"] == "WMP"


async def test_a_session_token_is_for_the_roles_services(identity, settings) -> None:
    email, totp = await new_dsl(settings)
    resp = await identity.post("/v1/sessions", json={
        "email": email, "password": PASSWORD, "totp": totp.now()})
    assert resp.status_code == 200, resp.text
    claims = jwt.decode(resp.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == ["notifier"] and claims["schools"] == ["103456"]


async def test_the_relay_keeps_status_body_and_the_headers_clients_act_on(settings) -> None:
    async with running(build_ingest(settings, issuer=issuer_for(settings))) as ingest:
        no_basic = await ingest.post("/v1/token", data=FORM)
        assert no_basic.status_code == 401 and no_basic.json() == {"error": "invalid_client"}
        assert no_basic.headers["www-authenticate"] == 'Basic realm="daybreak"'
        assert no_basic.headers["cache-control"] == "no-store"
        email, totp = await new_dsl(settings)
        signed = await ingest.post("/v1/sessions", json={
            "email": email, "password": PASSWORD, "totp": totp.now()})
        assert signed.status_code == 200 and signed.headers["cache-control"] == "no-store"
        cookie = signed.headers["set-cookie"].lower()
        assert cookie.startswith("daybreak_session=") and "httponly" in cookie
        ingest.cookies.clear()
        for i in range(settings.login_max_failures):
            wrong = await ingest.post("/v1/sessions", json={
                "email": email, "password": f"wrong {i}", "totp": "000000"})
            assert wrong.status_code == 401
            assert wrong.headers["content-type"].startswith("application/problem+json")
        locked = await ingest.post("/v1/sessions", json={
            "email": email, "password": PASSWORD, "totp": totp.now()})
        assert locked.status_code == 429 and locked.headers["retry-after"] == "60"


async def test_a_relayed_police_token_is_accepted_by_ingest_and_refused_by_the_matcher(
    settings,
) -> None:
    creds = basic(*await new_police_client(settings, "WMP"))
    async with (running(build_ingest(settings, issuer=issuer_for(settings))) as ingest,
                running(build_matcher(settings, issuer=issuer_for(settings))) as matcher):
        resp = await matcher.post("/v1/token", data=FORM, headers=creds)  # any door will do
        assert resp.status_code == 200
        auth = {"Authorization": f"Bearer {resp.json()['access_token']}"}
        posted = await ingest.post("/v1/incidents", json=incident_body("WMP"), headers=auth)
        assert posted.status_code == 202, posted.text
        refused = await matcher.get("/v1/reviews", headers=auth)
        assert refused.status_code == 401


async def test_services_can_fetch_the_jwks_from_the_issuer(settings) -> None:
    by_url = settings.model_copy(update={"jwks": None,
                                         "jwks_url": "http://identity/.well-known/jwks.json"})
    creds = basic(*await new_police_client(settings, "WMP"))
    async with running(build_ingest(by_url, issuer=issuer_for(settings))) as ingest:
        token = (await ingest.post("/v1/token", data=FORM, headers=creds)).json()["access_token"]
        posted = await ingest.post("/v1/incidents", json=incident_body("WMP"),
                                   headers={"Authorization": f"Bearer {token}"})
        assert posted.status_code == 202, posted.text


async def test_an_issuer_away_is_503_at_the_relay_and_for_bearer_routes(settings) -> None:
    away = settings.model_copy(update={"jwks": None, "identity_url": "http://127.0.0.1:9",
                                       "jwks_url": "http://127.0.0.1:9/.well-known/jwks.json"})
    async with running(build_ingest(away)) as ingest:
        relayed = await ingest.post("/v1/token", data=FORM, headers=basic("a", "b"))
        assert relayed.status_code == 503 and relayed.headers["retry-after"] == "5"
        url = f"/v1/incidents/{uuid.uuid4()}"
        guarded = await ingest.get(url, headers=bearer(police()))
        assert guarded.status_code == 503  # no keys to check with: not the caller's fault
        garbage = await ingest.get(url, headers={"Authorization": "Bearer a.b.c"})
        assert garbage.status_code == 401  # not even a JWT header: refused before any fetch
