"""The bound that lets the matcher pass a pupil over unweighed is a true bound."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from datetime import date

from bench.match_quality import FULL, NAMES_AND_DOB, build_reports, build_world
from services.matcher.domain import ChildReport, Pupil, RosterIndex
from services.matcher.profiles import pupil_profile, report_profile
from services.matcher.scoring import (
    NameBound,
    context_bits,
    estimate_weights,
    score_context,
    score_names,
)

ON = date(2026, 11, 23)


def test_no_pupil_s_names_weigh_more_than_the_bound_says() -> None:
    """Every report against every pupil that shares a name with it, and a random one: the
    names' weight never exceeds the row's bound, nor the bound the report's ceiling; and the
    context's total, computed alone, is the one scoring adds up."""
    world, gen = build_world(5, 3_000, ON)
    profiles = [pupil_profile(pupil) for pupil in world.pupils]
    weights = estimate_weights(profiles)
    by_name: dict[str, list[int]] = {}
    for row, profile in enumerate(profiles):
        for form in profile.given + profile.preferred + profile.family + profile.former:
            by_name.setdefault(form, []).append(row)
    rng = random.Random(5)
    checked = exact = 0
    for offset, fields in enumerate((FULL, NAMES_AND_DOB)):
        reports, _ = build_reports(world, gen, 300, 6 + offset, fields=fields)
        for report in reports:
            child = report_profile(report)
            bound = NameBound(child, weights)
            rows = {row for form in child.given + child.family for row in by_name.get(form, [])}
            for row in rows | {rng.randrange(len(profiles))}:
                bits = score_names(child, profiles[row], weights)[0]
                assert bits <= bound.of(profiles[row]) + 1e-9 <= bound.ceiling + 2e-9
                # rows are ranked by the context's total before any is weighed in full
                assert context_bits(child, profiles[row], weights) == score_context(
                    child, profiles[row], weights)[0]
                checked += 1
                exact += bool(set(child.given) & set(profiles[row].given))
    assert checked > 5_000 and exact > 500  # exact agreements are among the pairs checked


def pupil(number: int, given: str, family: str, *, preferred: str = "") -> Pupil:
    """A roster row on roll since 2020, born on a day of its own."""
    return Pupil(urn=f"1{number % 50:05d}", upn="", given_name=given, preferred_name=preferred,
                 family_name=family, former_family_name="",
                 date_of_birth=date.fromordinal(date(2012, 1, 1).toordinal() + number),
                 gender="", address_line1="", postcode="", enrolment_status="C",
                 on_roll_from=date(2020, 9, 1), on_roll_to=None)


def test_a_preferred_name_s_weight_is_within_the_ceiling() -> None:
    """A preferred name agreeing exactly weighs its own term-frequency weight, with its own
    m and u: the bound holds it as it holds an exact given name."""
    roll = [pupil(n, f"Given{n}", f"Family{n}") for n in range(3_000)]
    roll.append(pupil(3_000, "Alexandra", "Quill", preferred="Sasha"))
    profiles = [pupil_profile(row) for row in roll]
    weights = estimate_weights(profiles)
    child = report_profile(ChildReport(child_ref="c", given_name="Sasha", family_name="Quill",
                                       date_of_birth=roll[-1].date_of_birth))
    bits, levels, _ = score_names(child, profiles[-1], weights)
    assert levels == {"given_name": "preferred", "family_name": "exact"}
    bound = NameBound(child, weights)
    assert bits <= bound.of(profiles[-1]) <= bound.ceiling


def test_an_unmatched_child_says_whether_anyone_was_on_roll() -> None:
    """Nobody blocked on roll, and pupils blocked but too unlike to be plausible (many passed
    over unweighed by the bound), are two different reasons for the LA."""
    world, gen = build_world(3, 4_000, ON)
    index = RosterIndex(world.pupils, open_urns=world.open_urns)
    reasons: Counter[str] = Counter()
    for offset, fields in enumerate((FULL, NAMES_AND_DOB)):
        reports, _ = build_reports(world, gen, 400, 4 + offset, fields=fields)
        for report in reports:
            decision = index.match(report, on_date=ON)
            if decision.status == "unmatched":
                blocked = index.comparison_levels(report, on_date=ON)
                assert decision.reason == ("no candidate scored above the review threshold"
                                           if blocked else "no candidate on roll at an open school")
                reasons[decision.reason] += 1
    assert min(reasons.values()) >= 20 and len(reasons) == 2


def test_a_roll_read_in_another_order_gives_the_same_weights_and_decisions() -> None:
    """PostgreSQL returns a roll's rows in no set order (concurrent imports lay them out
    differently), so the weights must not depend on it: u is measured on random pairs, drawn
    from the rows in an order of their own content."""
    world, gen = build_world(9, 3_000, ON)
    shuffled = list(world.pupils)
    random.Random(9).shuffle(shuffled)
    first = RosterIndex(world.pupils, open_urns=world.open_urns)
    second = RosterIndex(shuffled, open_urns=world.open_urns)
    assert first.u_probabilities == second.u_probabilities
    reports, _ = build_reports(world, gen, 300, 10, fields=NAMES_AND_DOB)
    for report in reports:
        one, other = first.match(report, on_date=ON), second.match(report, on_date=ON)
        assert (one.status, sorted(m.pupil.urn for m in one.matches)) == (
            other.status, sorted(m.pupil.urn for m in other.matches))


def test_a_row_is_ranked_by_the_same_context_total_it_is_scored_with() -> None:
    """Rows are ranked and bounded by the context's total alone, then weighed in full: with
    a school hint (right or wrong) and a force's area, the two totals are the same number."""
    world, gen = build_world(8, 3_000, ON)
    index = RosterIndex(world.pupils, open_urns=world.open_urns)
    rng = random.Random(8)
    reports, truths = build_reports(world, gen, 200, 9, fields=FULL)
    checked = 0
    for report, truth in zip(reports, truths, strict=True):
        hint = rng.choice([*truth, rng.choice(world.urns)]) if truth else ""
        query = index._query(dataclasses.replace(report, school_urn_hint=hint))
        for row in index._blocking.candidates(query.profile):
            assert index._context_bits(row, query) == index._context(row, query)[0]
            checked += 1
    assert checked > 500
