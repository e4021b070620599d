"""`POST /v1/incidents` reads its own request (services/common/lean_route.py): the answers a
client gets are what FastAPI's dependencies gave, authentication first."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from services.common.lean_route import is_json
from services.common.settings import Settings
from services.ingest.main import build_app
from tests.support.api import issuer_for, running
from tests.support.incidents import DEFAULT_LA, incident_body, incidents_on_topic, register_force
from tests.support.tokens import bearer, person, police

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(build_app(settings, issuer=issuer_for(settings))) as client:
        yield client


def _errors(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors: list[dict[str, str]] = response.json()["errors"]
    return errors


async def test_who_is_asking_is_settled_before_the_body(api: httpx.AsyncClient) -> None:
    # before: FastAPI parsed the body first, so a caller with no token learnt it was not JSON
    nothing = await api.post("/v1/incidents", content=b"{not json",
                             headers={"Content-Type": "application/json"})
    assert nothing.status_code == 401
    assert nothing.headers["www-authenticate"].startswith("Bearer")
    admin = await api.post("/v1/incidents", content=b"{not json",
                           headers=bearer(person("admin")) | {"Content-Type": "application/json"})
    assert admin.status_code == 403


async def test_a_body_that_is_not_a_json_report_names_the_field_never_the_value(
        api: httpx.AsyncClient, settings: Settings) -> None:
    wmp = bearer(police("WMP"))
    body = incident_body()
    as_text = json.dumps(body).encode()
    assert _errors(await api.post("/v1/incidents", content=b"", headers=wmp
                                  | {"Content-Type": "application/json"})) == [
        {"field": "body", "message": "Field required"}]
    for media in ("text/plain", "application/jsonx", "multipart/form-data"):
        [error] = _errors(await api.post("/v1/incidents", content=as_text,
                                         headers=wmp | {"Content-Type": media}))
        assert error["field"] == "body" and "application/json" in error["message"]
    [error] = _errors(await api.post("/v1/incidents", content=as_text[:-1],
                                     headers=wmp | {"Content-Type": "application/json"}))
    assert error["field"] == "body" and error["message"].startswith("Invalid JSON")
    body["children"][0]["date_of_birth"] = "Khan"
    errors = _errors(await api.post("/v1/incidents", json=body, headers=wmp))
    assert errors[0]["field"] == "children[0].date_of_birth"
    assert "Khan" not in json.dumps(errors)
    assert await incidents_on_topic(settings) == []


async def test_json_with_a_charset_or_a_json_suffix_is_taken(
        api: httpx.AsyncClient, settings: Settings) -> None:
    await register_force(settings, "WMP", DEFAULT_LA)
    wmp = bearer(police("WMP"))
    for media in ("application/json; charset=utf-8", "application/vnd.daybreak+json",
                  "Application/JSON"):
        answer = await api.post("/v1/incidents", content=json.dumps(incident_body()).encode(),
                                headers=wmp | {"Content-Type": media})
        assert answer.status_code == 202, (media, answer.text)


@pytest.mark.parametrize(("media", "taken"), [
    ("application/json", True), ("application/json;charset=utf-8", True),
    (" APPLICATION/JSON ; charset=utf-8", True), ("application/problem+json", True),
    ("application/jsonx", False), ("text/json", False), ("application/x-json-stream", False),
    ("", False), (None, False),
])
def test_what_counts_as_json(media: str | None, taken: bool) -> None:
    assert is_json(media) is taken
