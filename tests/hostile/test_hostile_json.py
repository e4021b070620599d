"""Hostile JSON to the incident and admin endpoints: a bounded 4xx problem, never 5xx or a hang."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.audit.main import build_app as build_audit
from services.audit.settings import AuditSettings
from services.audit.tree_head import generate_keypair
from services.common.settings import Settings
from services.matcher.main import build_app as build_matcher
from tests.support.api import running
from tests.support.hostile import CANARY
from tests.support.ids import next_force, next_la, next_urn
from tests.support.incidents import incident_body, incidents_on_topic
from tests.support.registry import school_body
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
JSON = {"Content-Type": "application/json"}
Case = tuple[bytes, dict[str, str]]


def dumps(body: Any) -> bytes:
    """JSON as a careless client writes it: NaN and Infinity allowed, lone surrogates kept."""
    return json.dumps(body).encode("utf-8", "surrogateescape")


def hostile_bodies(base: dict[str, Any], text: str) -> dict[str, Case]:
    """Each hostile variant of a valid body whose free-text field is `text`."""
    cases = {
        "10,000-deep arrays": b"[" * 10_000 + b"]" * 10_000,
        "10,000-deep objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        "8,000 unknown keys": dumps(base | {f"k{i}": i for i in range(8_000)}),
        "keys that are not names": dumps(base | {f"{CANARY} <script>{i}": 1 for i in range(9)}),
        "a 100,000-character key": dumps(base | {CANARY * 7_000: 1}),
        "a 150,000-character string": dumps(base | {text: CANARY * 10_000}),
        "bad UTF-8": dumps(base | {text: CANARY + "\udcff"}),
        "a lone surrogate escape": dumps(base | {text: CANARY}).replace(
            CANARY.encode(), CANARY.encode() + b"\\ud800"),
        "a NUL character": dumps(base | {text: CANARY + "\x00"}),
        "NaN": dumps(base | {text: float("nan")}),
        "-Infinity": dumps(base | {text: float("-inf")}),
        "trailing garbage": dumps(base) + CANARY.encode(),
        "an empty body": b"",
        "null": b"null",
        "a top-level array": dumps([base]),
        "over the body limit": dumps(base | {text: "x" * 300_000}),
    }
    out: dict[str, Case] = {name: (body, JSON) for name, body in cases.items()}
    out["gzip bomb"] = (gzip.compress(b"[" * 20_000_000), JSON | {"Content-Encoding": "gzip"})
    for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        out[f"as {media}"] = (dumps(base), {"Content-Type": media})
    out["no content type"] = (dumps(base), {})
    return out


@pytest.fixture
async def matcher(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The matcher app as main.py builds it."""
    async with running(build_matcher(settings)) as client:
        yield client


async def refused_cleanly(client: httpx.AsyncClient, method: str, path: str,
                          headers: dict[str, str], case: Case) -> httpx.Response:
    """Send a hostile body: a small 4xx problem+json within 10 s, naming nothing sent."""
    body, extra = case
    response = await asyncio.wait_for(
        client.request(method, path, content=body, headers=headers | extra), timeout=10)
    assert 400 <= response.status_code < 500, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    assert len(response.content) < 8_192
    assert CANARY not in response.text and "<script>" not in response.text
    return response


async def test_hostile_json_to_incidents_and_admin_puts_is_a_clean_4xx(
    ingest: httpx.AsyncClient, police: dict[str, str], matcher: httpx.AsyncClient,
    settings: Settings,
) -> None:
    admin = bearer(person("admin"))
    targets = [
        (ingest, "POST", "/v1/incidents", police, incident_body(), "summary"),
        (ingest, "PUT", "/v1/forces/ZZ", admin, {"name": "Zed Police"}, "name"),
        (matcher, "PUT", f"/v1/local-authorities/{next_la()}", admin, {"name": "Dudley"}, "name"),
        (matcher, "PUT", f"/v1/schools/{next_urn()}", admin, school_body(), "name"),
    ]
    for client, method, path, headers, base, text in targets:
        answers = {name: await refused_cleanly(client, method, path, headers, case)
                   for name, case in hostile_bodies(base, text).items()}
        assert answers["over the body limit"].status_code == 413
        # was 202 (incidents: then dead-lettered downstream) or 500 (the admin PUTs)
        assert answers["a NUL character"].status_code == 422
        many = answers["8,000 unknown keys"].json()  # was 8,000 errors, half a megabyte
        assert many["error_count"] == 8_000 and len(many["errors"]) == 50
    assert await incidents_on_topic(settings) == []
    assert (await ingest.get("/v1/forces/ZZ", headers=admin)).status_code == 404


async def test_duplicate_keys_mean_the_last_one_everywhere(
    ingest: httpx.AsyncClient, police: dict[str, str], settings: Settings
) -> None:
    body = dumps(incident_body()).replace(
        b'"given_name": "Amelia"', b'"given_name": "Zed", "given_name": "Amelia"').replace(
        b'"force_code": "WMP"', b'"force_code": "BTP", "force_code": "WMP"')
    assert body.count(b'"given_name"') == 2
    response = await ingest.post("/v1/incidents", content=body, headers=police | JSON)
    assert response.status_code == 202, response.text
    [event] = await incidents_on_topic(settings, at_least=1)
    incident = event["payload"]["incident"]
    assert incident["force_code"] == "WMP"
    assert incident["children"][0]["given_name"] == "Amelia"
    assert b"Zed" not in json.dumps(event).encode()


@pytest.mark.parametrize("field", [
    "given_name", "family_name", "address.line1", "address.line2", "address.town",
    "address.postcode", "school_hint.name", "voice_of_child"])
async def test_nul_in_any_child_text_is_refused_before_kafka(
    ingest: httpx.AsyncClient, police: dict[str, str], settings: Settings, field: str
) -> None:
    # before: 202, then every consumer that stores the child dead-lettered the event
    body = incident_body()
    child = body["children"][0]
    *parents, name = field.split(".")
    for parent in parents:
        child = child[parent]
    child[name] = f"{CANARY[:4]}\x00"
    response = await ingest.post("/v1/incidents", json=body, headers=police)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"children[0].{field}"]
    assert await incidents_on_topic(settings) == []


async def test_unknown_disclosure_fields_are_not_echoed(ingest: httpx.AsyncClient,
                                                        settings: Settings) -> None:
    admin = bearer(person("admin"))
    body = {"name": "Zed Police", "disclosure_profile": {"fields": [f"<script>{CANARY}"]}}
    response = await ingest.put(f"/v1/forces/{next_force('Z')}", json=body, headers=admin)
    assert response.status_code == 422
    assert CANARY not in response.text and "<script>" not in response.text
    assert "summary" in response.json()["errors"][0]["message"]  # names what is allowed


async def test_nul_in_credentials_is_422_not_500(ingest: httpx.AsyncClient) -> None:
    basic = base64.b64encode(b"client\x00:secret").decode()
    for response in (
        await ingest.post("/v1/sessions", json={
            "email": "dsl\u0000@school.test", "password": "x", "totp": "123456"}),
        await ingest.post("/v1/token", data={"grant_type": "client_credentials"},
                          headers={"Authorization": f"Basic {basic}"}),
    ):
        assert response.status_code == 422, response.text  # was 500
        assert response.headers["content-type"] == "application/problem+json"


async def test_audit_queries_past_what_the_log_can_hold_are_422_not_500(
    settings: Settings, tmp_path: Path
) -> None:
    audit = AuditSettings(**settings.model_dump(), audit_heads_file=tmp_path / "heads.jsonl",
                          audit_signing_key=generate_keypair().private_key)
    auditor = bearer(person("auditor"))
    async with running(build_audit(audit)) as client:
        for path, query in (("consistency", {"from": 2**63, "to": 2**63}),
                            ("consistency", {"from": 1, "to": 2**70}),
                            ("events", {"actor": "dsl\x00"}),
                            ("events.csv", {"school_urn": "\x00"})):
            response = await client.get(f"/v1/audit/{path}", params=query, headers=auditor)
            assert response.status_code == 422, (path, response.text)  # was 500
        fits = await client.get("/v1/audit/consistency", params={"from": 1, "to": 2**63 - 1},
                                headers=auditor)
        assert fits.status_code == 404  # no such head, and no crash
