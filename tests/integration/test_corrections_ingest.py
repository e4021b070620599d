"""Corrections at ingest: versions kept, idempotent retries, refusals, one child withdrawn."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.common.db import standalone_uow
from services.common.settings import Settings
from services.ingest.main import build_app
from services.ingest.models import incident_versions
from tests.support.api import issuer_for, new_police_client, police_token, running
from tests.support.incidents import incident_body, incidents_on_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(build_app(settings, issuer=issuer_for(settings))) as client:
        yield client


async def headers_for(api: httpx.AsyncClient, settings: Settings, force: str) -> dict[str, str]:
    client_id, secret = await new_police_client(settings, force)
    return {"Authorization": f"Bearer {await police_token(api, client_id, secret)}"}


def two_children() -> dict[str, Any]:
    body = incident_body()
    second = copy.deepcopy(body["children"][0]) | {"given_name": "Bilal",
                                                     "date_of_birth": "2014-05-06"}
    body["children"].append(second)
    return body


async def reported(api: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> str:
    resp = await api.post("/v1/incidents", json=body, headers=auth)
    assert resp.status_code == 202, resp.text
    incident_id: str = resp.json()["incident_id"]
    return incident_id


async def test_correction_is_a_new_version_on_kafka_naming_the_changed_child(
        api, settings) -> None:
    wmp = await headers_for(api, settings, "WMP")
    body = two_children()
    incident_id = await reported(api, wmp, body)
    corrected = copy.deepcopy(body)
    corrected["children"][1]["address"] = {"line1": "4 New Street", "postcode": "DY2 1AA"}

    first = await api.put(f"/v1/incidents/{incident_id}", json=corrected, headers=wmp)
    again = await api.put(f"/v1/incidents/{incident_id}", json=corrected, headers=wmp)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json() == {"incident_id": incident_id, "status": "accepted", "version": 2}
    assert again.json()["version"] == 2
    # the first report's retry is still that report's
    assert (await api.post("/v1/incidents", json=body, headers=wmp)).status_code == 200

    events = await incidents_on_topic(settings, at_least=2)
    assert [e["type"] for e in events] == ["IncidentReceived", "IncidentCorrected"]
    payload = events[1]["payload"]
    assert events[1]["_key"] == incident_id
    assert (payload["version"], payload["changed_children"],
            payload["withdrawn_children"]) == (2, [1], [])
    assert payload["incident"]["children"][1]["address"]["line1"] == "4 New Street"
    assert payload["default_la_code"] and payload["disclosure_fields"]

    async with standalone_uow(settings, "ingest") as uow:
        kept = (await uow.conn.execute(select(incident_versions).where(
            incident_versions.c.incident_id == incident_id)
            .order_by(incident_versions.c.version))).all()
    assert [k.version for k in kept] == [1, 2]
    assert all(len(k.child_digests) == 2 for k in kept)
    assert "Khan" not in str([tuple(k) for k in kept])


async def test_going_back_to_an_earlier_body_is_a_version_too(api, settings) -> None:
    wmp = await headers_for(api, settings, "WMP")
    body = incident_body()
    incident_id = await reported(api, wmp, body)
    changed = body | {"summary": "Corrected summary."}
    assert (await api.put(f"/v1/incidents/{incident_id}", json=changed,
                          headers=wmp)).json()["version"] == 2
    back = await api.put(f"/v1/incidents/{incident_id}", json=body, headers=wmp)
    assert (back.status_code, back.json()["version"]) == (202, 3)
    events = await incidents_on_topic(settings, at_least=3)
    assert [e["payload"]["changed_children"] for e in events[1:]] == [[], []]


async def test_dropping_children_from_the_end_withdraws_them(api, settings) -> None:
    wmp = await headers_for(api, settings, "WMP")
    body = two_children()
    incident_id = await reported(api, wmp, body)
    shorter = body | {"children": body["children"][:1]}
    assert (await api.put(f"/v1/incidents/{incident_id}", json=shorter,
                          headers=wmp)).status_code == 202
    events = await incidents_on_topic(settings, at_least=2)
    assert (events[1]["payload"]["changed_children"],
            events[1]["payload"]["withdrawn_children"]) == ([], [1])
    # already withdrawn by the correction: withdrawing it again changes nothing
    again = await api.post(f"/v1/incidents/{incident_id}/children/1/withdraw",
                           json={"reason": "duplicate"}, headers=wmp)
    assert again.status_code == 200


async def test_refusals_are_problems(api, settings) -> None:
    wmp = await headers_for(api, settings, "WMP")
    gmp = await headers_for(api, settings, "GMP")
    body = incident_body()
    incident_id = await reported(api, wmp, body)
    path = f"/v1/incidents/{incident_id}"

    other_ref = await api.put(path, json=body | {"incident_reference": "WMP-other"},
                              headers=wmp)
    assert other_ref.status_code == 409
    assert other_ref.headers["content-type"].startswith("application/problem+json")
    assert (await api.put(path, json=incident_body("GMP", body["incident_reference"]),
                          headers=wmp)).status_code == 403
    assert (await api.put(path, json=incident_body("GMP", body["incident_reference"]),
                          headers=gmp)).status_code == 404
    assert (await api.put(f"/v1/incidents/{incident_id[:-4]}0000", json=body,
                          headers=wmp)).status_code == 404
    broken = copy.deepcopy(body)
    broken["children"][0]["date_of_birth"] = "2016-13-45"
    invalid = await api.put(path, json=broken, headers=wmp)
    assert invalid.status_code == 422 and "Khan" not in invalid.text

    await api.post(f"{path}/withdraw", json={"reason": "sent in error"}, headers=wmp)
    gone = await api.put(path, json=body | {"summary": "Too late."}, headers=wmp)
    assert gone.status_code == 409
    child = await api.post(f"{path}/children/0/withdraw", json={"reason": "x"}, headers=wmp)
    assert child.status_code == 409
    assert [e["type"] for e in await incidents_on_topic(settings, at_least=2)] == [
        "IncidentReceived", "IncidentWithdrawn"]


async def test_withdrawing_one_child_is_published_once(api, settings) -> None:
    wmp = await headers_for(api, settings, "WMP")
    gmp = await headers_for(api, settings, "GMP")
    incident_id = await reported(api, wmp, two_children())
    path = f"/v1/incidents/{incident_id}/children"
    first = await api.post(f"{path}/1/withdraw", json={"reason": "not related"}, headers=wmp)
    again = await api.post(f"{path}/1/withdraw", json={"reason": "again"}, headers=wmp)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json() == {"incident_id": incident_id, "status": "withdrawn",
                            "child_index": 1}
    assert (await api.post(f"{path}/2/withdraw", json={"reason": "x"},
                           headers=wmp)).status_code == 404
    assert (await api.post(f"{path}/0/withdraw", json={"reason": "x"},
                           headers=gmp)).status_code == 404
    assert (await api.post(f"{path}/0/withdraw", json={"reason": ""},
                           headers=wmp)).status_code == 422

    events = await incidents_on_topic(settings, at_least=2)
    assert [e["type"] for e in events] == ["IncidentReceived", "ChildWithdrawn"]
    assert events[1]["payload"] | {"withdrawn_at": None} == {
        "incident_id": incident_id, "force_code": "WMP", "child_index": 1,
        "withdrawn_at": None, "reason": "not related"}
    # a later correction keeps the withdrawn child out of its changes
    body = two_children()
    events_body = events[0]["payload"]["incident"]
    body["incident_reference"] = events_body["incident_reference"]
    body["children"][1]["given_name"] = "Changed"
    body["children"][0] = events_body["children"][0]
    resp = await api.put(f"/v1/incidents/{incident_id}", json=body, headers=wmp)
    assert resp.status_code == 202
    corrected = (await incidents_on_topic(settings, at_least=3))[2]["payload"]
    assert corrected["changed_children"] == [] and corrected["withdrawn_children"] == []
