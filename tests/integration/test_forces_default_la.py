"""A force's profile names its default LA; ingest refuses incidents from a force without one
(`la:unknown` cannot exist) and lists such forces at `GET /v1/admin/readiness`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.settings import Settings
from services.ingest.main import build_app
from services.ingest.models import forces, incidents
from services.ingest.readiness import force_problems
from tests.support.api import issuer_for, metrics_auth, new_police_client, police_token, running
from tests.support.ids import next_force, next_la
from tests.support.incidents import incident_body, incidents_on_topic
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
ADMIN = bearer(person("admin", subject="admin@example.test"))


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(build_app(settings, issuer=issuer_for(settings))) as client:
        yield client


async def police_of(api: httpx.AsyncClient, settings: Settings, force: str) -> dict[str, str]:
    """A bearer header for a new client of a force this test leaves unregistered."""
    client_id, secret = await new_police_client(settings, force, default_la=None)
    return {"Authorization": f"Bearer {await police_token(api, client_id, secret)}"}


async def stored(engine: AsyncEngine, force: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(incidents).where(incidents.c.force_code == force))
    return int(count or 0)


async def test_put_force_stores_the_default_la_upper_cased_and_keeps_it_when_omitted(
    api: httpx.AsyncClient
) -> None:
    force, la = next_force("D"), next_la()
    created = await api.put(f"/v1/forces/{force}", headers=ADMIN,
                            json={"name": "Dee Police", "default_la_code": la.lower()})
    assert created.status_code == 201, created.text
    assert created.json()["default_la_code"] == la
    renamed = await api.put(f"/v1/forces/{force}", headers=ADMIN, json={
        "name": "Dee Constabulary", "disclosure_profile": {"fields": ["summary"]}})
    assert renamed.status_code == 200
    shown = (await api.get(f"/v1/forces/{force}", headers=ADMIN)).json()
    assert shown == {"force_code": force, "name": "Dee Constabulary",
                     "disclosure_profile": {"fields": ["summary"]}, "default_la_code": la}


@pytest.mark.parametrize("code", ["", "L-332", "TOOLONG99", "332 "])
async def test_a_default_la_code_unlike_an_la_code_is_422(api: httpx.AsyncClient,
                                                          code: str) -> None:
    force = next_force("D")
    resp = await api.put(f"/v1/forces/{force}", headers=ADMIN,
                         json={"name": "Dee Police", "default_la_code": code})
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["default_la_code"]
    assert (await api.get(f"/v1/forces/{force}", headers=ADMIN)).status_code == 404


async def test_an_unregistered_force_is_refused_409_and_nothing_is_kept(
    api: httpx.AsyncClient, settings: Settings, engine: AsyncEngine
) -> None:
    force = next_force("U")
    police = await police_of(api, settings, force)
    body = incident_body(force)
    resp = await api.post("/v1/incidents", json=body, headers=police)
    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["title"] == "Force not ready"
    assert "Daybreak administrator" in problem["detail"]
    assert "Nothing was stored" in problem["detail"]
    assert "Khan" not in resp.text and "Amelia" not in resp.text
    assert await stored(engine, force) == 0
    assert await incidents_on_topic(settings) == []

    # nothing was kept: once the admin registers the force, the same report is new (202)
    la = next_la()
    assert (await api.put(f"/v1/forces/{force}", headers=ADMIN,
                          json={"name": "U Police", "default_la_code": la})).status_code == 201
    again = await api.post("/v1/incidents", json=body, headers=police)
    assert again.status_code == 202, again.text
    [event] = await incidents_on_topic(settings, at_least=1)
    assert event["payload"]["default_la_code"] == la
    assert event["_key"] == again.json()["incident_id"]


async def test_a_force_whose_profile_names_no_default_la_is_refused(
    api: httpx.AsyncClient, settings: Settings, engine: AsyncEngine
) -> None:
    force = next_force("P")
    assert (await api.put(f"/v1/forces/{force}", headers=ADMIN,
                          json={"name": "P Police"})).status_code == 201
    police = await police_of(api, settings, force)
    resp = await api.post("/v1/incidents", json=incident_body(force), headers=police)
    assert (resp.status_code, resp.json()["title"]) == (409, "Force not ready")
    assert await stored(engine, force) == 0
    assert await incidents_on_topic(settings) == []


async def test_a_retry_of_an_accepted_incident_is_still_200(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    force = next_force("R")
    client_id, secret = await new_police_client(settings, force)
    police = {"Authorization": f"Bearer {await police_token(api, client_id, secret)}"}
    body = incident_body(force)
    first = await api.post("/v1/incidents", json=body, headers=police)
    again = await api.post("/v1/incidents", json=body, headers=police)
    assert (first.status_code, again.status_code) == (202, 200)
    conflicting = await api.post("/v1/incidents", json=body | {"summary": "other"},
                                 headers=police)
    assert (conflicting.status_code, conflicting.json()["title"]) == (409, "Conflict")


def gauge(metrics: str) -> float:
    """The readiness gauge's count of forces with no default LA."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if (sample.name == "daybreak_readiness_problems"
                    and sample.labels == {"code": "force_no_default_la"}):
                return sample.value
    raise AssertionError("no daybreak_readiness_problems gauge")


async def test_readiness_lists_forces_with_no_default_la_for_admins_only(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    unready, ready = next_force("N"), next_force("Y")
    await api.put(f"/v1/forces/{unready}", headers=ADMIN, json={"name": "N Police"})
    await api.put(f"/v1/forces/{ready}", headers=ADMIN,
                  json={"name": "Y Police", "default_la_code": next_la()})
    resp = await api.get("/v1/admin/readiness", headers=ADMIN)
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["ready"] is False
    mine = [p for p in answer["problems"] if p["subject"] in (f"force:{unready}",
                                                                f"force:{ready}")]
    assert mine == [{"code": "force_no_default_la", "subject": f"force:{unready}",
                     "message": mine[0]["message"]}]
    assert f"/v1/forces/{unready}" in mine[0]["message"]
    scraped = await api.get("/metrics", headers=metrics_auth())
    assert gauge(scraped.text) == len(answer["problems"])

    police = await police_of(api, settings, ready)
    for headers, status in ((police, 403), ({}, 401)):
        refused = await api.get("/v1/admin/readiness", headers=headers)
        assert refused.status_code == status
        assert refused.headers["content-type"].startswith("application/problem+json")


async def test_force_problems_names_police_clients_whose_force_has_no_profile(
    engine: AsyncEngine
) -> None:
    registered, unknown = next_force("C"), next_force("C")
    async with engine.begin() as conn:
        await conn.execute(forces.insert().values(force_code=registered, name="C Police",
                                                  default_la_code=next_la()))
        found = await force_problems(conn, now=datetime(2026, 12, 1, 7, tzinfo=UTC),
                                     client_forces=[registered, unknown])
        await conn.rollback()
    mine = [(p.code, p.subject) for p in found if p.subject in (f"force:{registered}",
                                                                  f"force:{unknown}")]
    assert mine == [("force_no_profile", f"force:{unknown}")]
