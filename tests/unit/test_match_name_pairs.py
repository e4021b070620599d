"""Names that go together, and blocking that survives a mistyped name with a slipped date."""

from __future__ import annotations

from datetime import date

from bench.match_quality import build_world
from services.matcher.blocking import BlockingIndex
from services.matcher.comparisons import DISAGREE, compare_family
from services.matcher.domain import ChildReport, Pupil, RosterIndex
from services.matcher.names import name_forms
from services.matcher.profiles import pupil_profile, report_profile
from services.matcher.scoring import estimate_weights, score_names

ON_DATE = date(2026, 11, 23)
CYRILLIC_GIVEN = ("Анна", "Мария", "Ольга", "Юлия", "Наталья", "Екатерина")
CYRILLIC_FAMILY = ("Петрова", "Смирнова", "Попова", "Лебедева", "Новикова", "Козлова")


def pupil(given: str, family: str, born: date) -> Pupil:
    """A roster row on roll since 2020."""
    return Pupil(urn="100001", upn="", given_name=given, preferred_name="", family_name=family,
                 former_family_name="", date_of_birth=born, gender="", address_line1="",
                 postcode="", enrolment_status="C", on_roll_from=date(2020, 9, 1),
                 on_roll_to=None)


def born(number: int) -> date:
    """A different birth date per number."""
    return date.fromordinal(date(2012, 1, 1).toordinal() + number)


def few_names_roll() -> list[Pupil]:
    """A roll where Cyrillic-named pupils share six given and six family names between
    them (three children per pair), and Latin-named pupils draw from many: "Zara" and
    "Quill" are held by as many pupils as "Анна" and "Петрова", but never together save once."""
    rows = [pupil(f"Given{n}", f"Family{n}", born(n)) for n in range(3_000)]
    number = 3_000
    for given in CYRILLIC_GIVEN:
        for family in CYRILLIC_FAMILY:
            for _ in range(3):
                rows.append(pupil(given, family, born(number)))
                number += 1
    for n in range(17):
        rows.append(pupil("Zara", f"Other{n}", born(number + n)))
        rows.append(pupil(f"Another{n}", "Quill", born(number + 20 + n)))
    rows.append(pupil("Zara", "Quill", born(number + 40)))
    return rows


def test_a_name_pair_many_children_share_counts_for_less_than_two_independent_names() -> None:
    roll = few_names_roll()
    profiles = [pupil_profile(row) for row in roll]
    weights = estimate_weights(profiles)
    cyrillic = next(p for p, row in zip(profiles, roll, strict=True)
                    if (row.given_name, row.family_name) == ("Анна", "Петрова"))
    latin = next(p for p, row in zip(profiles, roll, strict=True)
                 if (row.given_name, row.family_name) == ("Zara", "Quill"))
    assert weights.counts["given_name"]["анна"] == weights.counts["given_name"]["zara"] == 18
    assert weights.counts["family_name"]["петрова"] == weights.counts["family_name"]["quill"]
    cyrillic_bits, levels, by_field = score_names(cyrillic, cyrillic, weights)
    latin_bits, _, _ = score_names(latin, latin, weights)
    assert levels["given_name"] == levels["family_name"] == "exact"
    # two other Анна Петровас: agreeing on both names is about 1 in 1,500, not 1 in 30,000
    assert cyrillic_bits < latin_bits - 3
    assert sum(by_field.values()) == cyrillic_bits  # the explanation still adds up


def test_a_namesake_in_a_script_with_few_names_born_on_another_day_is_no_match() -> None:
    roll = few_names_roll()
    index = RosterIndex(roll)
    decision = index.match(ChildReport("c", "Анна", "Петрова", date(2019, 7, 7)),
                           on_date=ON_DATE)
    assert decision.status != "matched"
    # the child on the roll is still found
    anna = next(row for row in roll if (row.given_name, row.family_name) == ("Анна", "Петрова"))
    decision = index.match(ChildReport("c", "Анна", "Петрова", anna.date_of_birth),
                           on_date=ON_DATE)
    assert decision.status == "matched"


def blocked(roll: list[Pupil], child: ChildReport) -> set[str]:
    """Return the given names of the pupils blocking finds for a report."""
    blocking = BlockingIndex()
    for row in roll:
        blocking.add(pupil_profile(row))
    blocking.freeze()
    return {roll[row].given_name for row in blocking.candidates(report_profile(child))}


def test_a_mistyped_given_name_with_the_year_slipped_is_still_a_candidate() -> None:
    # Matila is no sound of Matilda, and the year is a digit out: the family name with the
    # given name's initial on the same day of the year still meets
    roll = [pupil("Matilda", "Trogrugreth", date(2015, 1, 1)),
            pupil("Oscar", "Trogrugreth", date(2013, 6, 2))]
    child = ChildReport("c", "Matila", "Trogrugreth", date(2016, 1, 1))
    assert blocked(roll, child) == {"Matilda"}
    decision = RosterIndex(roll).match(child, on_date=ON_DATE)
    assert decision.status != "unmatched"


def test_both_names_mistyped_past_their_sound_meet_on_the_birth_date_by_initials() -> None:
    roll = [pupil("Daisy", "Humor", date(2019, 5, 27)), pupil("Dora", "Hale", date(2019, 5, 28))]
    assert blocked(roll, ChildReport("c", "Dalsy", "Hpumor", date(2019, 5, 27))) == {"Daisy"}
    # and on the day/month swap of the date
    roll = [pupil("Daisy", "Humor", date(2019, 5, 7))]
    assert blocked(roll, ChildReport("c", "Dalsy", "Hpumor", date(2019, 7, 5))) == {"Daisy"}


def test_names_in_a_script_that_writes_few_vowels_are_not_one_slip_apart() -> None:
    # حداد and أحمد transliterate to hdd and hmd: another family, not a keying slip
    assert compare_family(name_forms("حداد"), name_forms("أحمد"), ())[0] == DISAGREE
    assert compare_family(name_forms("حسين"), name_forms("Hussain"), ())[0] == "transliterated"


def test_a_real_name_loosely_like_another_is_no_double_misspelling() -> None:
    world, _ = build_world(3, 2_000, ON_DATE)
    roll = [*world.pupils, pupil("Alice", "Smith", date(2016, 7, 26)),
            pupil("Alfie", "Smith", date(2016, 7, 26))]
    profiles = [pupil_profile(row) for row in roll]
    weights = estimate_weights(profiles)
    alfie = profiles[-1]
    known = score_names(report_profile(ChildReport("c", "Alice", "Smith", date(2016, 7, 26))),
                        alfie, weights)
    misspelt = score_names(report_profile(ChildReport("c", "Alfxye", "Smith", date(2016, 7, 26))),
                           alfie, weights)
    assert misspelt[1]["given_name"] == "fuzzy_low"
    assert known[1]["given_name"] == "fuzzy_high"  # weighs as Eva for Ava would
    assert known[2]["given_name"] < misspelt[2]["given_name"] - 1
    # so Alice Smith is told from Alfie Smith, born the same day
    decision = RosterIndex(roll).match(ChildReport("c", "Alice", "Smith", date(2016, 7, 26)),
                                       on_date=ON_DATE)
    assert decision.status == "matched"
    assert decision.matches[0].pupil.given_name == "Alice"
