"""The prior by area: a reported child is likeliest on a roll in the reporting force's area."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import date

import pytest
from stdnum.gb import upn as upn_number

from services.matcher.domain import (
    IN_AREA,
    OUT_OF_AREA,
    PRIOR,
    ChildReport,
    Pupil,
    RosterIndex,
    area_priors,
)
from services.matcher.index import Registry, SchoolInfo
from services.matcher.training import learn_m, learned_area_share

ON_DATE = date(2026, 11, 23)
NEAR, FAR = "100001", "100002"
BORN = date(2016, 3, 2)
AREA = frozenset({NEAR})
UPN = upn_number.calc_check_digit("801000000001") + "801000000001"


def pupil(urn: str, given: str, family: str, born: date, *, line1: str = "",
          postcode: str = "") -> Pupil:
    return Pupil(urn=urn, upn="", given_name=given, preferred_name="", family_name=family,
                 former_family_name="", date_of_birth=born, gender="", address_line1=line1,
                 postcode=postcode, enrolment_status="C", on_roll_from=date(2020, 9, 1),
                 on_roll_to=None)


# two different children of one name and birth date, one near the reporting force and one
# far, among pupils far away
ROLL = [pupil(NEAR, "Amelia", "Khan", BORN, line1="12 Oak Road", postcode="DY1 2AB"),
        replace(pupil(FAR, "Amelia", "Khan", BORN, line1="3 Elm Street", postcode="M1 1AA"),
                upn=UPN),
        *(pupil(FAR, f"Child{i}", f"Family{i}", date(2014, 1, 1 + i % 28))
          for i in range(98))]


@pytest.fixture(scope="module")
def index() -> RosterIndex:
    return RosterIndex(ROLL, area_share=0.9)


def test_the_area_gets_its_share_of_the_prior_and_the_rest_the_remainder() -> None:
    inside, outside = area_priors(100, 1_000, 10_000, 0.9)
    total = 100 * 2**inside + 900 * 2**outside
    assert total == pytest.approx(1_000 / 10_000)  # a small roll stands for a sample
    assert 100 * 2**inside / total == pytest.approx(0.9)


def test_a_namesake_far_away_does_not_hold_back_the_child_near_the_force(
        index: RosterIndex) -> None:
    national = index.match(ChildReport("c", "Amelia", "Khan", BORN), on_date=ON_DATE)
    assert national.status == "review"
    near = index.match(ChildReport("c", "Amelia", "Khan", BORN, area_urns=AREA), on_date=ON_DATE)
    assert near.status == "matched"
    assert [m.pupil.urn for m in near.matches] == [NEAR]
    assert near.matches[0].agreements[PRIOR] == IN_AREA
    assert near.matches[0].bits[PRIOR] > national.candidates[0].bits[PRIOR]


def test_a_child_reported_far_from_school_is_still_found_on_strong_evidence(
        index: RosterIndex) -> None:
    child = ChildReport("c", "Amelia", "Khan", BORN, address_line1="3 Elm Street",
                        postcode="M1 1AA", upn=UPN, area_urns=AREA)
    decision = index.match(child, on_date=ON_DATE)
    assert decision.status == "matched"
    assert [m.pupil.urn for m in decision.matches] == [FAR]
    assert decision.matches[0].agreements[PRIOR] == OUT_OF_AREA


def test_an_unknown_area_leaves_the_prior_national(index: RosterIndex) -> None:
    plain = index.match(ChildReport("c", "Amelia", "Khan", BORN), on_date=ON_DATE)
    nowhere = index.match(ChildReport("c", "Amelia", "Khan", BORN, area_urns=frozenset()),
                          on_date=ON_DATE)
    assert [c.bits for c in plain.candidates] == [c.bits for c in nowhere.candidates]
    assert PRIOR not in plain.candidates[0].agreements
    assert plain.candidates[0].bits[PRIOR] == pytest.approx(-math.log2(10_000))


def test_em_learns_the_share_of_matches_in_the_area() -> None:
    rng = random.Random(5)
    m = {field: {"agree": 0.95, "disagree": 0.05} for field in ("f", "g")}
    u = {field: {"agree": 0.001, "disagree": 0.999} for field in ("f", "g")}
    rows, size = 1_000, 100

    def pair(levels: dict[str, dict[str, float]]) -> tuple[tuple[str, str], ...]:
        return tuple((f, "agree" if rng.random() < levels[f]["agree"] else "disagree")
                     for f in levels)

    reports, areas = [], []
    for _ in range(3_000):
        candidates, flags = [], []
        for _ in range(rng.randint(1, 5)):  # chance pairs, in the area as often as its size
            candidates.append(pair(u))
            flags.append(rng.random() < size / rows)
        if rng.random() < 0.8:  # the child is on a roll, in the area 85% of the time
            candidates.append(pair(m))
            flags.append(rng.random() < 0.85)
        reports.append(candidates)
        areas.append((size, flags))
    _, _, share = learn_m(reports, u, m, population=rows, areas=areas, rows=rows)
    assert share == pytest.approx(0.85, abs=0.04)


def test_the_shipped_model_has_an_area_share() -> None:
    share = learned_area_share()
    assert share is not None
    assert 0.5 < share < 1


def test_a_force_area_is_its_las_schools_and_its_default_la() -> None:
    schools = {
        "1": SchoolInfo("1", "One", "LA1", "", "open", force_code="WMP"),
        "2": SchoolInfo("2", "Two", "LA2", "", "open", force_code="WMP"),
        "3": SchoolInfo("3", "Three", "LA3", "", "open"),
        "4": SchoolInfo("4", "Four", "LA4", "", "open", force_code="GMP"),
    }
    registry = Registry(index=RosterIndex([]), schools=schools, version=())
    assert registry.area_urns("WMP", "LA3") == {"1", "2", "3"}
    assert registry.area_urns("WMP", None) == {"1", "2"}
    assert registry.area_urns("XX", None) == frozenset()
    assert registry.area_urns("WMP", "LA3") is registry.area_urns("WMP", "LA3")
