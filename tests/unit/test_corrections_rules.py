"""Corrections' pure rules: which children changed, which fields a reader is told changed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from schemas.matching import child_id_for
from services.ingest.corrections import changed_children
from services.notifier.corrections import changed_fields, indexes_of, with_change

AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("previous", "current", "withdrawn", "expected"), [
    pytest.param(["a", "b"], ["a", "B"], set(), ([1], []), id="second-changed"),
    pytest.param(["a", "b"], ["a", "b", "c"], set(), ([2], []), id="one-added"),
    pytest.param(["a", "b", "c"], ["a"], set(), ([], [1, 2]), id="two-dropped"),
    pytest.param(["a", "b", "c"], ["a"], {2}, ([], [1]), id="dropped-one-withdrawn-before"),
    pytest.param(["a", "b"], ["A", "B"], {0}, ([1], []), id="withdrawn-stays-withdrawn"),
    pytest.param(None, ["a", "b"], set(), ([0, 1], []), id="kept-before-versions"),
    pytest.param(["a"], ["a"], set(), ([], []), id="nothing-changed"),
])
def test_changed_children(previous, current, withdrawn, expected) -> None:
    assert changed_children(previous, current, withdrawn) == expected


def test_only_fields_the_reader_may_see_are_named_in_display_order() -> None:
    old = {"given_name": "Ada", "family_name": "Ng", "date_of_birth": "2015-01-09",
           "voice_of_child": "x", "upn": "A1", "address": {"line1": "1 A St"}}
    new = old | {"voice_of_child": "y", "upn": "B2", "address": {"line1": "2 B St"},
                 "family_name": "Ngo"}
    assert changed_fields(old, new, ["address", "present_at_incident"]) == [
        "family_name", "address"]
    assert changed_fields(old, old, ["address"]) == []


def test_a_version_noted_twice_is_one_entry() -> None:
    first = with_change([], version=2, at=AT, fields=["summary"])
    both = with_change(first, version=2, at=AT, fields=["address", "summary"])
    assert both == [{"version": 2, "at": AT.isoformat(), "fields": ["summary", "address"]}]
    third = with_change(both, version=3, at=AT, fields=["children"])
    assert [c["version"] for c in third] == [2, 3]


def test_report_positions_are_told_from_the_matchers_child_ids() -> None:
    incident_id = uuid.uuid4()
    ids = [child_id_for(incident_id, 3), child_id_for(incident_id, 0), uuid.uuid4()]
    assert indexes_of(incident_id, ids) == [0, 3]
