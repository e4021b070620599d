"""The outward code (district) of a postcode, and the LA guessed from it."""

from __future__ import annotations

from datetime import date

import pytest

from services.matcher.decisions import guess_la
from services.matcher.domain import RosterIndex
from services.matcher.index import Registry, SchoolInfo
from services.matcher.names import postcode_outward
from services.matcher.records import ChildReport


@pytest.mark.parametrize(("postcode", "outward"), [
    pytest.param("B12 9QP", "B12", id="spaced"),
    pytest.param("B129QP", "B12", id="compact"),
    pytest.param(" b12  9qp ", "B12", id="lower-case-extra-spaces"),
    pytest.param("SW1A 1AA", "SW1A", id="four-character-district"),
    pytest.param("B1 1AA", "B1", id="two-character-district"),
    pytest.param("SW1A", "SW1A", id="outward-only-four"),
    pytest.param("B12", "B12", id="outward-only-three"),
    pytest.param("", "", id="absent"),
])
def test_postcode_outward(postcode: str, outward: str) -> None:
    assert postcode_outward(postcode) == outward


def _registry(*schools: SchoolInfo) -> Registry:
    return Registry(index=RosterIndex([]), schools={s.urn: s for s in schools}, version=())


@pytest.mark.parametrize("child_postcode", [
    pytest.param("B12 9QP", id="spaced"),
    pytest.param("B129QP", id="compact"),  # was None: "B129QP" never equalled "B12"
    pytest.param("b12 9qp", id="lower-case"),
])
def test_guess_la_from_the_district_however_the_postcode_is_written(
    child_postcode: str,
) -> None:
    registry = _registry(SchoolInfo("100001", "Oak Road", "330", "B12 0AA", "open"),
                         SchoolInfo("100002", "Elm Lane", "331", "CV1 2AB", "open"))
    child = ChildReport(child_ref="0", given_name="Ada", family_name="Lovelace",
                        date_of_birth=date(2015, 1, 1), postcode=child_postcode)
    assert guess_la(registry, (), child) == "330"


def test_guess_la_without_a_postcode_is_none() -> None:
    registry = _registry(SchoolInfo("100001", "Oak Road", "330", "B12 0AA", "open"))
    child = ChildReport(child_ref="0", given_name="Ada", family_name="Lovelace",
                        date_of_birth=date(2015, 1, 1))
    assert guess_la(registry, (), child) is None
