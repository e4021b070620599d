"""Incident posted to ingest → matcher → ChildMatched / review queue, over real Kafka."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from schemas import topics
from services.common.sealing import ChildSealing
from services.common.settings import Settings
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from tests.support.api import issuer_for, new_police_client, police_token, running
from tests.support.ids import next_force, next_la, next_urn
from tests.support.incidents import incident_body
from tests.support.kafka import read_topic
from tests.support.registry import pupil, seed
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.e2e


def la_token(settings: Settings, la: str) -> dict[str, str]:
    return bearer(person("la_officer", las=[la], subject=f"officer-{la}"))


async def events(settings: Settings, topic: str, at_least: int) -> list[dict]:
    records = await read_topic(settings.kafka(), settings.topic(topic),
                               at_least=at_least, timeout_s=30)
    sealing = ChildSealing.from_settings(settings)  # the child data travels sealed
    return [sealing.opened_json(r.value) | {"_key": r.key.decode()} for r in records]


@pytest.fixture
async def pipeline(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    ingest_app = build_ingest(settings, issuer=issuer_for(settings))
    async with running(build_matcher(settings)), running(ingest_app) as ingest:
        client_id, secret = await new_police_client(settings, "WMP")
        auth = {"Authorization": f"Bearer {await police_token(ingest, client_id, secret)}"}
        yield ingest, auth


async def test_incident_reaches_child_matched_with_the_right_urn(settings, pipeline) -> None:
    ingest, auth = pipeline
    la = next_la()
    oak, elm = next_urn(), next_urn()
    await seed(settings, las=[la], school_rows=[
        {"urn": oak, "name": "Oak Road Primary", "la_code": la, "postcode": "DY1 2AB"},
        {"urn": elm, "name": "Elm Academy", "la_code": la, "postcode": "DY2 9ZZ"},
    ], pupil_rows=[
        pupil(oak, "", "Amelia", "Khan", "2016-03-02", address_line1="12 Oak Road",
              postcode="DY1 2AB"),
        pupil(elm, "", "Amelie", "Kahn", "2015-07-19", address_line1="3 Elm Way",
              postcode="DY2 9ZZ"),
    ])
    body = incident_body()
    body["children"][0].pop("upn")
    body["children"][0]["school_hint"] = None
    resp = await ingest.post("/v1/incidents", json=body, headers=auth)
    assert resp.status_code == 202
    incident_id = resp.json()["incident_id"]

    matched = await events(settings, topics.MATCHES, at_least=1)
    assert len(matched) == 1
    event = matched[0]
    assert event["type"] == "ChildMatched" and event["_key"] == incident_id
    assert [s["urn"] for s in event["payload"]["schools"]] == [oak]
    assert event["payload"]["schools"][0]["la_code"] == la
    assert event["payload"]["decided_by"] == "engine"


async def test_ambiguous_child_goes_to_review_and_resolving_matches(settings, pipeline) -> None:
    ingest, auth = pipeline
    la, other_la = next_la(), next_la()
    north, south = next_urn(), next_urn()
    # a family name of this test's own: another test's Oliver Smith born that day, in the
    # session's database, would join the candidates and could move the review to their LA
    family = "Smith" + next_force("", 6).lower()
    await seed(settings, las=[la, other_la], school_rows=[
        {"urn": north, "name": "North Primary", "la_code": la, "postcode": "B1 1AA"},
        {"urn": south, "name": "South Primary", "la_code": la, "postcode": "B9 9ZZ"},
    ], pupil_rows=[
        pupil(north, "", "Oliver", family, "2017-05-05", address_line1="1 High St",
              postcode="B1 1AA"),
        pupil(south, "", "Oliver", family, "2017-05-05", address_line1="99 Low Rd",
              postcode="B9 9ZZ"),
    ])
    body = incident_body()
    child = body["children"][0]
    child.update(given_name="Oliver", family_name=family, date_of_birth="2017-05-05",
                 address=None, school_hint=None)
    child.pop("upn")
    resp = await ingest.post("/v1/incidents", json=body, headers=auth)
    assert resp.status_code == 202

    queued = await events(settings, topics.REVIEWS, at_least=1)
    assert [e["type"] for e in queued] == ["ChildNeedsReview"]
    review_id = queued[0]["payload"]["review_id"]
    assert queued[0]["payload"]["la_code"] == la
    assert family not in json.dumps(queued[0])

    async with running(build_matcher(settings)) as matcher:
        officer = la_token(settings, la)
        listing = (await matcher.get("/v1/reviews", headers=officer)).json()
        assert [r["review_id"] for r in listing] == [review_id]
        assert listing[0]["minutes_until_school_day"] >= 0
        assert family not in json.dumps(listing)

        stranger = la_token(settings, other_la)
        assert (await matcher.get(f"/v1/reviews/{review_id}", headers=stranger)).status_code == 404
        assert (await matcher.get("/v1/reviews", headers=stranger)).json() == []

        detail = await matcher.get(f"/v1/reviews/{review_id}", headers=officer)
        assert detail.status_code == 200
        assert {c["urn"] for c in detail.json()["candidates"]} == {north, south}

        nowhere = await matcher.post(f"/v1/reviews/{review_id}/resolve",
                                     json={"urn": next_urn()}, headers=officer)
        assert nowhere.status_code == 422
        both = await matcher.post(f"/v1/reviews/{review_id}/resolve",
                                  json={"urn": south, "outcome": "not_on_roll"}, headers=officer)
        assert both.status_code == 422
        resolved = await matcher.post(f"/v1/reviews/{review_id}/resolve",
                                      json={"urn": south}, headers=officer)
        assert resolved.status_code == 200
        assert resolved.json() == {"review_id": review_id, "status": "matched", "urns": [south],
                                   "other_schools": 0}
        again = await matcher.post(f"/v1/reviews/{review_id}/resolve",
                                   json={"outcome": "not_on_roll"}, headers=officer)
        assert again.status_code == 409

    # the child, each candidate pupil shown, then the resolution
    disclosures = await events(settings, topics.DISCLOSURES, at_least=4)
    assert sorted(d["payload"]["action"] for d in disclosures) == [
        "review.candidate.view", "review.candidate.view", "review.resolve", "review.view"]
    for disclosure in disclosures:
        seen = disclosure["payload"]
        assert seen["actor"] == f"officer-{la}" and seen["review_id"] == review_id
        assert len(seen["child_key"]) == 64
    assert family not in json.dumps(disclosures)

    outcome = await events(settings, topics.MATCHES, at_least=1)
    assert [e["type"] for e in outcome] == ["ChildMatched"]
    assert outcome[0]["payload"]["decided_by"] == "review"
    assert [s["urn"] for s in outcome[0]["payload"]["schools"]] == [south]
