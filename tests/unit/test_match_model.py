"""The probabilistic model: any script, missing fields, EM-learnt m and explanations."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import date

import pytest

from services.matcher.comparisons import (
    DOB,
    EXACT,
    FAMILY,
    GIVEN,
    MISSING,
    ONE_DIGIT,
    TRANSLITERATED,
    YEAR_OFF,
    compare_dob,
)
from services.matcher.decisions import explanation
from services.matcher.domain import ChildReport, Pupil, RosterIndex
from services.matcher.scoring import M_START
from services.matcher.training import learn_m, learned_m

ON_DATE = date(2026, 11, 23)
URN, OTHER = "100001", "100002"


def pupil(given: str, family: str, born: date, *, urn: str = URN, line1: str = "",
          postcode: str = "") -> Pupil:
    """A roster row on roll since 2020."""
    return Pupil(urn=urn, upn="", given_name=given, preferred_name="", family_name=family,
                 former_family_name="", date_of_birth=born, gender="", address_line1=line1,
                 postcode=postcode, enrolment_status="C", on_roll_from=date(2020, 9, 1),
                 on_roll_to=None)


# a small school with a mix of scripts; each row a different child
ROLL = [
    pupil("Анна", "Петрова", date(2016, 3, 2)),
    pupil("Мария", "Иванова", date(2016, 3, 2)),
    pupil("محمد", "حداد", date(2015, 5, 6)),
    pupil("فاطمة", "حداد", date(2017, 1, 9)),
    pupil("عمران", "خان", date(2014, 2, 3), urn=OTHER),
    pupil("小明", "王", date(2016, 8, 8)),
    pupil("Łukasz", "Wąsik", date(2013, 4, 4)),
    pupil("Ștefan", "Țăranu", date(2012, 6, 7)),
    pupil("Şükrü", "Öztürk", date(2014, 9, 1)),
    pupil("Oliver", "Smith", date(2015, 10, 10), line1="3 Elm Street", postcode="B1 1AA"),
]


@pytest.fixture(scope="module")
def index() -> RosterIndex:
    return RosterIndex(ROLL)


def decide(index: RosterIndex, given: str, family: str, born: date, **fields: str) -> tuple[
        str, set[str]]:
    decision = index.match(ChildReport("c", given, family, born, **fields), on_date=ON_DATE)
    return decision.status, {m.pupil.urn for m in decision.matches}


@pytest.mark.parametrize(("given", "family", "born", "urn"), [
    ("Анна", "Петрова", date(2016, 3, 2), URN),      # Cyrillic, exactly as on roll
    ("Анна".upper(), "Петрова".upper(), date(2016, 3, 2), URN),  # in capitals
    ("مُحَمَّد", "حداد", date(2015, 5, 6), URN),     # Arabic with its short vowels written
    ("عمران", "خان", date(2014, 2, 3), OTHER),       # Urdu
    ("小明", "王", date(2016, 8, 8), URN),            # Chinese
    ("Lukasz", "Wasik", date(2013, 4, 4), URN),      # Polish without diacritics
    ("Ştefan", "Ţăranu", date(2012, 6, 7), URN),     # Romanian, cedilla letters for comma ones
    ("Sukru", "Ozturk", date(2014, 9, 1), URN),      # Turkish without diacritics
])
def test_exact_names_in_any_script_match(
        index: RosterIndex, given: str, family: str, born: date, urn: str) -> None:
    assert decide(index, given, family, born) == ("matched", {urn})


def test_children_with_non_latin_names_born_the_same_day_are_told_apart(
        index: RosterIndex) -> None:
    # before, every Cyrillic name folded to nothing: Анна and Мария were the same child
    assert decide(index, "Мария", "Иванова", date(2016, 3, 2)) == ("matched", {URN})
    decision = index.match(ChildReport("c", "Мария", "Иванова", date(2016, 3, 2)),
                           on_date=ON_DATE)
    assert decision.matches[0].pupil.given_name == "Мария"


@pytest.mark.parametrize(("given", "family", "born"), [
    ("Mariya", "Ivanova", date(2016, 3, 2)),    # Cyrillic on roll, Latin on the report
    ("Maria", "Ivanova", date(2016, 3, 2)),     # another Latin spelling
    ("Mohammed", "Haddad", date(2015, 5, 6)),   # Arabic on roll
    ("Imran", "Khan", date(2014, 2, 3)),        # Urdu on roll
    ("Xiaoming", "Wang", date(2016, 8, 8)),     # Chinese on roll
])
def test_transliterated_names_match_or_go_to_review_never_elsewhere(
        index: RosterIndex, given: str, family: str, born: date) -> None:
    status, urns = decide(index, given, family, born)
    assert status in ("matched", "review")
    expected = {p.urn for p in ROLL if p.date_of_birth == born}
    decision = index.match(ChildReport("c", given, family, born), on_date=ON_DATE)
    assert {c.pupil.urn for c in decision.matches + decision.candidates} <= expected
    if status == "matched":
        assert urns <= expected


def test_a_cross_script_name_reaches_the_transliterated_level(index: RosterIndex) -> None:
    decision = index.match(ChildReport("c", "Mariya", "Ivanova", date(2016, 3, 2)),
                           on_date=ON_DATE)
    lead = (decision.matches + decision.candidates)[0]
    assert lead.agreements[GIVEN] == TRANSLITERATED
    assert lead.agreements[FAMILY] == TRANSLITERATED


def test_missing_address_weighs_nothing_on_either_side(index: RosterIndex) -> None:
    # the roll has Oliver's address; a report without one loses nothing for it
    with_none = index.match(ChildReport("c", "Oliver", "Smith", date(2015, 10, 10)),
                            on_date=ON_DATE).matches[0]
    assert with_none.agreements["address"] == MISSING
    assert with_none.bits["address"] == 0.0
    # and a report with an address against a roll row without one
    other = index.match(ChildReport("c", "Анна", "Петрова", date(2016, 3, 2),
                                    address_line1="1 High Street", postcode="LE1 4GH"),
                        on_date=ON_DATE).matches[0]
    assert other.agreements["address"] == MISSING
    assert other.bits["address"] == 0.0


def test_explanation_adds_up_to_the_score(index: RosterIndex) -> None:
    lead = index.match(ChildReport("c", "Oliver", "Smyth", date(2015, 10, 10),
                                   address_line1="3 Elm Street", postcode="B1 1AA"),
                       on_date=ON_DATE).matches[0]
    items = explanation(lead)
    fields = {item["field"] for item in items}
    assert {"prior", GIVEN, FAMILY, DOB, "address"} <= fields
    assert sum(item["bits"] for item in items) == pytest.approx(lead.score, abs=0.05)
    family = next(item for item in items if item["field"] == FAMILY)
    assert family["level"] != EXACT and family["bits"] < next(
        item["bits"] for item in items if item["field"] == GIVEN) + 20


def test_a_year_out_is_its_own_level() -> None:
    born = date(2015, 10, 10).toordinal()
    assert compare_dob(born, date(2016, 10, 10).toordinal()) == ONE_DIGIT  # the nearer level
    assert compare_dob(date(2009, 5, 5).toordinal(), date(2010, 5, 5).toordinal()) == YEAR_OFF


def test_em_recovers_the_m_that_made_the_pairs() -> None:
    rng = random.Random(3)
    true_m = {GIVEN: {"exact": 0.8, "near": 0.15, "disagree": 0.05},
              DOB: {"exact": 0.9, "near": 0.07, "disagree": 0.03}}
    u = {GIVEN: {"exact": 0.01, "near": 0.04, "disagree": 0.95},
         DOB: {"exact": 0.002, "near": 0.02, "disagree": 0.978}}

    def draw(levels: dict[str, float]) -> str:
        return rng.choices(list(levels), weights=list(levels.values()))[0]

    reports = []
    for _ in range(4000):
        candidates = [tuple((f, draw(u[f])) for f in u) for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.8:  # the child is on the roll: one pair is the match
            candidates.append(tuple((f, draw(true_m[f])) for f in true_m))
        reports.append(candidates)
    start = {f: {level: 1 / 3 for level in levels} for f, levels in true_m.items()}
    m, found, _ = learn_m(reports, u, start, population=4)
    for field, levels in true_m.items():
        for level, value in levels.items():
            assert m[field][level] == pytest.approx(value, abs=0.03), (field, level)
    assert found == pytest.approx(0.8, abs=0.05)


def test_the_shipped_model_covers_every_level() -> None:
    m = learned_m()
    assert set(m) == set(M_START)
    for field, levels in M_START.items():
        assert set(m[field]) == set(levels)
        assert math.fsum(m[field].values()) == pytest.approx(1.0, abs=1e-4)
        assert min(m[field].values()) > 0


def test_term_frequency_a_rare_family_name_counts_for_more() -> None:
    roll = [pupil(f"Child{i}", "Smith" if i % 2 else f"Rare{i}", date(2014, 1, 1 + i % 28))
            for i in range(200)]
    roll.append(pupil("Ava", "Okonkwo", date(2015, 2, 2)))
    roll.append(pupil("Ava", "Smith", date(2015, 2, 3)))
    index = RosterIndex(roll)
    rare = index.match(ChildReport("c", "Ava", "Okonkwo", date(2015, 2, 2)), on_date=ON_DATE)
    common = index.match(ChildReport("c", "Ava", "Smith", date(2015, 2, 3)), on_date=ON_DATE)
    bits = [next(c for c in d.matches + d.candidates).bits[FAMILY] for d in (rare, common)]
    assert bits[0] > bits[1] + 3
    assert Counter(p.family_name for p in roll)["Smith"] > 90
