"""The OpenAPI of the routes merged since the first schemathesis run says what their servers
enforce: the admin API's fields and rules, the receipts list's query, a webhook's URL, a
correction's rules, the partner directory's rules (each finding of the merged tree pinned)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from services.common.problems import RULES_KEY, Problem
from services.common.settings import Settings
from services.common.webhook_signing import WebhookUrl
from services.identity.admin_api import ClientIn, UserIn
from services.identity.main import build_app as build_identity
from services.ingest.main import build_app as build_ingest
from services.ingest.receipts_api import decode_cursor, encode_cursor, parse_since
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.support.api import issuer_for
from tests.support.tokens import identity_settings_for

pytestmark = pytest.mark.integration


def _param(operation: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [p["schema"] for p in operation["parameters"] if p["name"] == name]
    schema: dict[str, Any] = found.get("anyOf", [found])[0]
    return schema


def test_the_admin_api_declares_its_fields_and_rules(settings: Settings) -> None:
    spec = build_identity(identity_settings_for(settings)).openapi()
    schemas = spec["components"]["schemas"]
    user = schemas["UserIn"]["properties"]
    assert "@" in user["email"]["pattern"]
    assert user["school_urns"]["items"]["pattern"] == r"^[0-9]{6,7}$"
    assert user["la_codes"]["items"]["pattern"] == r"^[A-Za-z0-9]{1,8}$"
    assert schemas["ClientIn"]["properties"]["force_code"]["pattern"] == r"^[A-Za-z]{2,10}$"
    create = spec["paths"]["/v1/users"]["post"]
    assert any("dsl" in rule for rule in create[RULES_KEY]["rules"])
    listing = spec["paths"]["/v1/users"]["get"]
    assert _param(listing, "cursor")["pattern"] == r"^[A-Za-z0-9_-]*$"
    assert any("cursor" in rule for rule in listing[RULES_KEY]["rules"])


@pytest.mark.parametrize("body", [
    {"email": "", "role": "admin"}, {"email": "a b@x.test", "role": "admin"},
    {"email": "nobody", "role": "admin"},
    {"email": "dsl@x.test", "role": "dsl", "school_urns": ["\u00b2" * 6]},
    {"email": "la@x.test", "role": "la_officer", "la_codes": [""]},
], ids=["empty-email", "spaced-email", "no-at", "superscript-urn", "blank-la"])
def test_a_person_refuses_what_their_schema_forbids(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        UserIn.model_validate(body)


@pytest.mark.parametrize("code", ["", "0000000000", "\u00c9\u00c9", " WMP", "W"])
def test_a_client_refuses_a_force_code_that_is_not_2_to_10_letters(code: str) -> None:
    with pytest.raises(ValidationError, match="force code must be 2 to 10 letters"):
        ClientIn.model_validate({"force_code": code})  # in words the portal shows an admin
    assert ClientIn.model_validate({"force_code": "wmp"}).force_code == "wmp"


def test_ingest_declares_the_receipts_query_the_webhook_url_and_a_corrections_rules(
    settings: Settings,
) -> None:
    spec = build_ingest(settings, issuer=issuer_for(settings)).openapi()
    listing = spec["paths"]["/v1/incidents"]["get"]
    [since] = [p["schema"] for p in listing["parameters"] if p["name"] == "updated_since"]
    assert since["format"] == "date-time"  # beside anyOf: a string's format, null's none
    assert _param(listing, "cursor")["pattern"] == r"^[A-Za-z0-9_-]*$"
    assert {"cursor", "updated_since"} <= {rule.split()[0] for rule in
                                           listing[RULES_KEY]["rules"]}
    correct = spec["paths"]["/v1/incidents/{incident_id}"]["put"]
    assert any("under 18" in rule for rule in correct[RULES_KEY]["rules"])
    hook = spec["paths"]["/v1/forces/{force_code}/receipts-webhook"]["put"]
    assert any("https" in rule for rule in hook[RULES_KEY]["rules"])
    url = spec["components"]["schemas"]["ReceiptsWebhookIn"]["properties"]["url"]
    assert url["pattern"].startswith("^[Hh][Tt][Tt][Pp][Ss]?://")


@pytest.mark.parametrize("since", ["20261123T073000Z", "2026-11-23 07:30:00+00:00",
                                   "2026-11-23T07:30+00:00", "2026-11-23T07:30:00+0000",
                                   "\u0662026-11-23T07:30:00Z"])
def test_updated_since_is_rfc_3339_as_documented(since: str) -> None:
    with pytest.raises(Problem) as refused:
        parse_since(since)
    assert refused.value.status == 422
    assert parse_since("2026-11-23t07:30:00.5z").isoformat() == "2026-11-23T07:30:00.500000+00:00"


def test_a_cursor_is_only_one_this_api_gave() -> None:
    cursor = encode_cursor(7, None)
    assert decode_cursor(cursor) == (7, None)
    for forged in (cursor[:4] + "!" + cursor[4:], cursor + "."):  # skipped by a lax decoder
        with pytest.raises(Problem):
            decode_cursor(forged)


@pytest.mark.parametrize("url", [" https://hooks.example/in", "https://hooks.example/a b",
                                 "https://hooks.example/\x7f", "ftp://hooks.example/"])
def test_a_webhook_url_has_no_space_or_control_character(url: str) -> None:
    with pytest.raises(ValidationError, match="must be an https URL"):
        TypeAdapter(WebhookUrl).validate_python(url)
    assert TypeAdapter(WebhookUrl).validate_python("HTTPS://hooks.example/in")


def test_the_partner_directory_declares_its_phone_and_email_rules(settings: Settings) -> None:
    spec = build_notifier(NotifierSettings(**settings.model_dump()),
                          issuer=issuer_for(settings)).openapi()
    rules = spec["paths"]["/v1/partners/{la_code}"]["put"][RULES_KEY]["rules"]
    assert {rule.split()[0] for rule in rules} == {"phone", "email"}
