"""Rules with one home, used by more than one service: ages, disclosable fields, events."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from schemas.audit import TreeHeadSigned
from schemas.envelope import parse_envelope, wrap
from schemas.incidents import DISCLOSABLE_FIELDS, ChildReport, age_on
from schemas.registry import EVENT_TYPES


@pytest.mark.parametrize(("born", "on", "age"), [
    pytest.param(date(2015, 5, 10), date(2019, 5, 9), 3, id="day-before-birthday"),
    pytest.param(date(2015, 5, 10), date(2019, 5, 10), 4, id="on-birthday"),
    pytest.param(date(2012, 2, 29), date(2013, 2, 28), 0, id="leap-born-28-feb"),
    pytest.param(date(2012, 2, 29), date(2013, 3, 1), 1, id="leap-born-1-mar"),
    pytest.param(date(2020, 1, 1), date(2020, 1, 1), 0, id="born-that-day"),
])
def test_age_on(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


def test_every_child_field_a_profile_may_disclose_is_a_child_report_field() -> None:
    child_fields = set(ChildReport.model_fields)
    assert {"gender", "upn", "voice_of_child"} <= set(DISCLOSABLE_FIELDS)
    assert set(DISCLOSABLE_FIELDS) - {"occurred_at", "incident_type", "summary"} <= child_fields


def test_tree_head_signed_parses_from_the_registry() -> None:
    head = TreeHeadSigned(tree_size=3, root_hash="ab" * 32, signed_at=datetime.now(UTC),
                          key_id="k1", signature="cd" * 64)
    parsed = parse_envelope(wrap(head).to_bytes(), EVENT_TYPES)
    assert parsed.payload == head
