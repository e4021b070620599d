"""The published OpenAPI says what the server enforces (issue 18's findings, each pinned)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from schemas.incidents import IncidentIn, WithdrawIn
from services.common.problems import PROBLEM_JSON, RULES_KEY
from services.common.settings import Settings
from services.ingest.main import build_app as build_ingest
from services.matcher.reviews_api import ResolveIn
from tests.support.api import issuer_for, running
from tests.support.incidents import incident_body
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest(settings: Settings) -> Any:
    """Ingest in-process."""
    async with running(build_ingest(settings, issuer=issuer_for(settings))) as client:
        yield client


async def test_an_unserved_method_names_every_method_of_the_path(
        ingest: httpx.AsyncClient) -> None:
    answer = await ingest.options("/v1/forces/WMP", headers=bearer(person("admin")))
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) >= {"GET", "PUT"}


async def test_the_spec_declares_what_the_server_enforces(ingest: httpx.AsyncClient) -> None:
    spec = (await ingest.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    token = schemas["Body_token_v1_token_post"]
    assert token["properties"]["grant_type"]["enum"] == ["client_credentials"]
    assert token["required"] == ["grant_type"]
    assert r"[^\x00]" in schemas["SessionIn"]["properties"]["password"]["pattern"]
    assert schemas["IncidentIn"]["additionalProperties"] is False
    report = spec["paths"]["/v1/incidents"]["post"]
    assert any("under 18" in rule for rule in report[RULES_KEY]["rules"])
    assert report["security"] == [{"bearer": []}]
    assert report["responses"]["403"]["content"][PROBLEM_JSON]["schema"] == {
        "$ref": "#/components/schemas/Problem"}
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status"}
    assert spec["paths"]["/v1/token"]["post"]["security"] == [{"client": []}]


@pytest.mark.parametrize("change", [
    {"date_of_birth": 1_500_000_000}, {"present_at_incident": 1},
    {"given_name": " \u2003"}, {"given_name": "A\x00"},
], ids=["numeric-date", "numeric-bool", "blank-name", "nul-name"])
def test_an_incident_refuses_what_its_schema_forbids(change: dict[str, Any]) -> None:
    body = incident_body()
    body["children"][0] |= change
    with pytest.raises(ValidationError):
        IncidentIn.model_validate(body)


def test_a_blank_withdrawal_reason_is_refused() -> None:
    with pytest.raises(ValidationError):
        WithdrawIn.model_validate({"reason": "\t "})


def test_a_resolution_names_a_school_or_an_outcome_as_its_schema_says() -> None:
    assert ResolveIn.model_json_schema()["oneOf"][0]["required"] == ["urn"]
    with pytest.raises(ValidationError):
        ResolveIn.model_validate({"urn": "100001", "outcome": "not_on_roll"})
