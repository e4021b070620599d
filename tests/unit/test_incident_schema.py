"""The incident body: what is accepted and what is refused, without any service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.envelope import UnknownEventType, parse_envelope, wrap
from schemas.incidents import IncidentIn, IncidentReceived, incident_age_check
from schemas.registry import EVENT_TYPES
from schemas.topics import all_topics_with_dlq, dlq
from tests.support.incidents import incident_body


def fields_in_error(body: dict) -> set[str]:
    with pytest.raises(ValidationError) as info:
        IncidentIn.model_validate(body)
    return {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}


def test_contract_example_is_valid() -> None:
    incident = IncidentIn.model_validate(incident_body())
    assert incident.children[0].school_hint is not None
    assert incident.children[0].school_hint.urn == "103456"


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda b: b.pop("force_code"), "force_code"),
    (lambda b: b.update(force_code="wmp"), "force_code"),
    (lambda b: b.update(incident_reference=""), "incident_reference"),
    (lambda b: b.update(occurred_at="2026-11-21T22:40:00"), "occurred_at"),
    (lambda b: b.update(incident_type="burglary"), "incident_type"),
    (lambda b: b.update(summary="x" * 2001), "summary"),
    (lambda b: b.update(children=[]), "children"),
    (lambda b: b.update(children=b["children"] * 21), "children"),
    (lambda b: b["children"][0].pop("date_of_birth"), "children.0.date_of_birth"),
    (lambda b: b["children"][0].update(given_name=" "), "children.0.given_name"),
    (lambda b: b["children"][0].update(voice_of_child="v" * 2001), "children.0.voice_of_child"),
    (lambda b: b["children"][0].update(upn="123"), "children.0.upn"),
    (lambda b: b["children"][0].update(gender="female"), "children.0.gender"),
    (lambda b: b["children"][0].update(nickname="Mia"), "children.0.nickname"),
    (lambda b: b.update(extra_field=1), "extra_field"),
])
def test_bad_fields_are_named(mutate, field) -> None:
    body = incident_body()
    mutate(body)
    assert field in fields_in_error(body)


def test_children_must_be_under_18_and_born_before_the_incident() -> None:
    adult = incident_body()
    adult["children"][0]["date_of_birth"] = "2008-11-21"  # 18 on the day
    unborn = incident_body()
    unborn["children"][0]["date_of_birth"] = "2026-12-01"
    seventeen = incident_body()
    seventeen["children"][0]["date_of_birth"] = "2008-11-22"
    for body in (adult, unborn):
        with pytest.raises(ValidationError) as info:
            IncidentIn.model_validate(body)
        assert "Amelia" not in str(info.value)
    IncidentIn.model_validate(seventeen)


def test_future_incident_check_allows_small_clock_skew() -> None:
    now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    assert incident_age_check(datetime(2026, 11, 22, 8, 4, tzinfo=UTC), now)
    assert not incident_age_check(datetime(2026, 11, 22, 8, 6, tzinfo=UTC), now)


def test_envelope_round_trips_through_the_registry() -> None:
    incident = IncidentIn.model_validate(incident_body())
    event = IncidentReceived(incident_id=uuid.uuid4(), received_at=datetime.now(UTC),
                             incident=incident, disclosure_fields=["occurred_at"])
    envelope = wrap(event)
    parsed = parse_envelope(envelope.to_bytes(), EVENT_TYPES)
    assert parsed.type == "IncidentReceived" and parsed.version == 1
    assert parsed.payload == event
    assert parsed.event_id == envelope.event_id


def test_unknown_event_type_is_refused() -> None:
    raw = b'{"event_id":"' + str(uuid.uuid4()).encode() + (
        b'","type":"Nope","version":1,"occurred_at":"2026-11-22T08:00:00Z","payload":{}}')
    with pytest.raises(UnknownEventType):
        parse_envelope(raw, EVENT_TYPES)


def test_every_topic_has_a_dlq_twin() -> None:
    names = all_topics_with_dlq()
    assert "incidents.v1" in names and dlq("incidents.v1") == "incidents.v1.dlq"
    assert len(names) == 12 and "registry.v1.dlq" in names
