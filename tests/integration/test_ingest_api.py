"""Ingest against the real broker and database: every status the contract names."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from services.common.settings import Settings
from services.ingest.main import build_app
from tests.support.api import issuer_for, metrics_auth, new_police_client, police_token, running
from tests.support.incidents import incident_body, incidents_on_topic
from tests.support.tokens import bearer, mint, person, police

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(build_app(settings, issuer=issuer_for(settings))) as client:
        yield client


@pytest.fixture
async def wmp(api: httpx.AsyncClient, settings: Settings) -> dict[str, str]:
    client_id, secret = await new_police_client(settings, "WMP")
    return {"Authorization": f"Bearer {await police_token(api, client_id, secret)}"}


async def test_accepted_incident_is_on_kafka_once_keyed_by_id(api, wmp, settings) -> None:
    body = incident_body()
    resp = await api.post("/v1/incidents", json=body, headers=wmp)
    assert resp.status_code == 202
    assert resp.json()["status"] == "accepted"
    incident_id = resp.json()["incident_id"]

    events = await incidents_on_topic(settings, at_least=1)
    assert len(events) == 1
    event = events[0]
    assert event["_key"] == incident_id
    assert event["type"] == "IncidentReceived" and event["version"] == 1
    assert event["payload"]["incident"]["children"][0]["family_name"] == "Khan"
    assert "Khan" not in event["_key"]


async def test_retry_returns_200_same_id_and_publishes_nothing_more(api, wmp, settings) -> None:
    body = incident_body()
    first = await api.post("/v1/incidents", json=body, headers=wmp)
    again = await api.post("/v1/incidents", json=body, headers=wmp)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["incident_id"] == first.json()["incident_id"]
    assert len(await incidents_on_topic(settings, at_least=1)) == 1


async def test_concurrent_identical_posts_accept_exactly_once(api, wmp, settings) -> None:
    body = incident_body()
    answers = await asyncio.gather(
        *(api.post("/v1/incidents", json=body, headers=wmp) for _ in range(8))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 7 + [202]
    assert len({a.json()["incident_id"] for a in answers}) == 1
    assert len(await incidents_on_topic(settings, at_least=1)) == 1


async def test_same_reference_different_body_is_409(api, wmp) -> None:
    body = incident_body()
    assert (await api.post("/v1/incidents", json=body, headers=wmp)).status_code == 202
    changed = {**body, "summary": "Something else."}
    resp = await api.post("/v1/incidents", json=changed, headers=wmp)
    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == 409


async def test_other_force_is_403(api, wmp, settings) -> None:
    resp = await api.post("/v1/incidents", json=incident_body(force="GMP"), headers=wmp)
    assert resp.status_code == 403
    assert await incidents_on_topic(settings) == []


@pytest.mark.parametrize("header", [
    None, "Bearer not-a-token", "Basic abc", "Bearer ",
])
async def test_missing_or_malformed_token_is_401(api, header) -> None:
    headers = {"Authorization": header} if header else {}
    resp = await api.post("/v1/incidents", json=incident_body(), headers=headers)
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_expired_forged_alg_none_and_other_services_tokens_are_401(api) -> None:
    expired = mint(police(), now=datetime.now(UTC) - timedelta(hours=2))
    forged = jwt.encode({"sub": "x", "kind": "client", "scope": "incidents:write",
                         "force": "WMP", "iss": "daybreak", "aud": "ingest",
                         "iat": 1, "exp": 4102444800}, "wrong-key" * 8, algorithm="HS256")
    unsigned = jwt.encode({"sub": "x", "kind": "client", "scope": "incidents:write",
                           "force": "WMP", "iss": "daybreak", "aud": "ingest",
                           "iat": 1, "exp": 4102444800}, None, algorithm="none")
    notifiers = mint(police(), audience=["notifier"])  # a token for the notifier, not ingest
    for token in (expired, forged, unsigned, notifiers):
        resp = await api.post("/v1/incidents", json=incident_body(),
                              headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401


async def test_user_token_without_scope_is_403(api, settings) -> None:
    dsl = person("dsl", schools=["103456"])
    resp = await api.post("/v1/incidents", json=incident_body(),
                          headers=bearer(dsl, audience=["ingest"]))
    assert resp.status_code == 403


async def test_invalid_body_is_422_naming_fields_without_child_data(api, wmp, settings) -> None:
    body = incident_body()
    body["children"][0]["date_of_birth"] = "2016-13-45"
    body["children"][0]["given_name"] = "Zebedee" * 40
    body["summary"] = "s" * 2001
    resp = await api.post("/v1/incidents", json=body, headers=wmp)
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in resp.json()["errors"]}
    assert {"children[0].date_of_birth", "children[0].given_name", "summary"} <= fields
    assert "Zebedee" not in resp.text and "Khan" not in resp.text and "2016-13-45" not in resp.text
    assert await incidents_on_topic(settings) == []


async def test_adult_and_future_incidents_are_422(api, wmp) -> None:
    adult = incident_body()
    adult["children"][0]["date_of_birth"] = "2000-01-01"
    future = incident_body(occurred_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    no_children = incident_body(children=[])
    for body in (adult, future, no_children):
        resp = await api.post("/v1/incidents", json=body, headers=wmp)
        assert resp.status_code == 422, body


async def test_body_over_256_kib_is_413(api, wmp) -> None:
    big = json.dumps(incident_body(summary="x" * 300_000)).encode()
    resp = await api.post("/v1/incidents", content=big,
                          headers={**wmp, "Content-Type": "application/json"})
    assert resp.status_code == 413

    async def chunks():
        for _ in range(30):
            yield b" " * 10_000

    resp = await api.post("/v1/incidents", content=chunks(),
                          headers={**wmp, "Content-Type": "application/json"})
    assert resp.status_code == 413


async def test_database_down_is_503_and_nothing_published(settings) -> None:
    dead_db = Settings(**{**settings.model_dump(),
                          "ingest_database_url": "postgresql+asyncpg://nobody:x@127.0.0.1:1/none"})
    async with running(build_app(dead_db)) as client:
        resp = await client.post("/v1/incidents", json=incident_body(),
                                 headers=bearer(police("WMP")))
    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert await incidents_on_topic(settings) == []


async def test_withdraw_is_published_once_and_other_force_gets_404(api, wmp, settings) -> None:
    incident_id = (await api.post("/v1/incidents", json=incident_body(), headers=wmp)).json()[
        "incident_id"]
    first = await api.post(f"/v1/incidents/{incident_id}/withdraw",
                           json={"reason": "sent in error"}, headers=wmp)
    again = await api.post(f"/v1/incidents/{incident_id}/withdraw", json={"reason": "again"},
                           headers=wmp)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["status"] == "withdrawn"

    client_id, secret = await new_police_client(settings, "GMP")
    gmp = {"Authorization": f"Bearer {await police_token(api, client_id, secret)}"}
    other = await api.post(f"/v1/incidents/{incident_id}/withdraw", json={"reason": "x"},
                           headers=gmp)
    assert other.status_code == 404

    events = await incidents_on_topic(settings, at_least=2)
    assert [e["type"] for e in events] == ["IncidentReceived", "IncidentWithdrawn"]
    assert {e["_key"] for e in events} == {incident_id}
    status = await api.get(f"/v1/incidents/{incident_id}", headers=wmp)
    assert status.json()["status"] == "withdrawn"


async def test_health_metrics_and_docs(api, wmp) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    assert (await api.get("/readyz")).status_code == 200
    await api.post("/v1/incidents", json=incident_body(), headers=wmp)
    metrics = (await api.get("/metrics", headers=metrics_auth())).text
    assert 'daybreak_incidents_accepted_total{force="WMP"}' in metrics
    assert (await api.get("/docs")).status_code == 404  # Swagger UI would load from a CDN
    spec = (await api.get("/openapi.json")).json()
    assert "/v1/incidents" in spec["paths"]
