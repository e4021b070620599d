"""Fellegi-Sunter match weights: m learnt by EM, u estimated from the roster.

A pair's match weight is the sum over fields of log2(m/u) for the level the field reached;
the index adds the prior log2(1/N) that one given pupil among N is the reported child.

* m = P(level | same child): how often a police record of a child differs from the school's
  (nicknames, typos, moved house, date of birth keyed wrong). It is learnt by EM
  (services/matcher/training.py) over unlabelled report/roster candidate pairs, starting
  from ``M_START``, by ``bench/train_match_model.py`` on a generated world that the quality
  benchmark does not use; the result ships as match_model.json, so the m the thresholds
  were set on does not drift from one batch of reports to the next.
* u = P(level | different children) is estimated as Splink does: compare random pairs of
  roster pupils (40,000, fixed seed) and count each level. Exact levels of given and
  family name, date of birth, household and UPN use term frequencies instead (u = share of
  roster records with that value), so agreeing on "Smith" counts for less than on
  "Oyelaran". Both estimates are shrunk towards national ``U_PRIORS`` (2,000 pseudo-pairs,
  1,000 pseudo-records) so a one-school roster still gets sensible weights.
* Given and family name are not independent: where a script or a community uses few names
  (12 Cyrillic family names and 12 given names among a roster's Cyrillic-named pupils),
  "Анна Петрова" is far commoner than the share of "Анна" times the share of "Петрова".
  When both names agree exactly, the pair's own share among the roster's other children
  (``Weights.pair_excess``) replaces the product when it is larger: the family name then
  counts only for what it adds to the given name.
* A near miss (nickname, variant, typo, part of a double name) never weighs more than an
  exact match on the reported name would, and a given name one slip from a roster name
  counts as a typo only when the reported spelling is itself no known name (Eva is not a
  typo of Ava: twins may be called both); a known name loosely like a roster name (Alice,
  Alfie) weighs as a known name one slip away, not as a double misspelling.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from services.matcher.comparisons import (
    ADDRESS,
    AGREE,
    DAY_MONTH_SWAP,
    DISAGREE,
    DOB,
    EXACT,
    FAMILY,
    FORMER,
    FUZZY_HIGH,
    FUZZY_LOW,
    GENDER,
    GIVEN,
    HOUSEHOLD,
    MISSING,
    NAME_ORDER,
    NICKNAME,
    ONE_DIGIT,
    PART,
    PREFERRED,
    SAME_DISTRICT,
    SAME_POSTCODE,
    SAME_STREET,
    STRONG_FAMILY,
    STRONG_GIVEN,
    TRANSLITERATED,
    TYPO,
    UPN,
    VARIANT,
    YEAR_OFF,
    Profile,
    compare_address,
    compare_dob,
    compare_family,
    compare_gender,
    compare_given,
    compare_upn,
)
from services.matcher.names import nickname_relatives
from services.matcher.training import learned_m

M_START: dict[str, dict[str, float]] = {
    GIVEN: {EXACT: 0.80, PREFERRED: 0.05, NICKNAME: 0.05, VARIANT: 0.03, TYPO: 0.03,
            TRANSLITERATED: 0.01, FUZZY_HIGH: 0.01, FUZZY_LOW: 0.015, DISAGREE: 0.015},
    FAMILY: {EXACT: 0.84, FORMER: 0.03, PART: 0.04, TRANSLITERATED: 0.01, FUZZY_HIGH: 0.04,
             FUZZY_LOW: 0.02, DISAGREE: 0.03},
    DOB: {EXACT: 0.93, DAY_MONTH_SWAP: 0.02, ONE_DIGIT: 0.03, YEAR_OFF: 0.005,
          DISAGREE: 0.015},
    GENDER: {AGREE: 0.98, DISAGREE: 0.02},
    ADDRESS: {HOUSEHOLD: 0.70, SAME_POSTCODE: 0.05, SAME_STREET: 0.03, SAME_DISTRICT: 0.07,
              DISAGREE: 0.15},
    UPN: {AGREE: 0.98, DISAGREE: 0.02},
}
TF_LEVELS = frozenset({(GIVEN, EXACT), (GIVEN, PREFERRED), (FAMILY, EXACT), (DOB, EXACT),
                       (ADDRESS, HOUSEHOLD), (UPN, AGREE)})
# u of a national roster, from the synthetic benchmark roster: the starting point that the
# roster's own pairs and frequencies refine (so a one-school roster still weighs sensibly).
U_PRIORS: dict[str, dict[str, float]] = {
    GIVEN: {EXACT: 0.006, PREFERRED: 0.0001, NICKNAME: 0.004, VARIANT: 0.0005, TYPO: 0.0005,
            TRANSLITERATED: 0.002, FUZZY_HIGH: 0.0005, FUZZY_LOW: 0.002, DISAGREE: 0.9844},
    FAMILY: {EXACT: 0.004, FORMER: 0.0001, PART: 0.0007, TRANSLITERATED: 0.002,
             FUZZY_HIGH: 0.0005, FUZZY_LOW: 0.001, DISAGREE: 0.9917},
    DOB: {EXACT: 0.0002, DAY_MONTH_SWAP: 0.00007, ONE_DIGIT: 0.0055, YEAR_OFF: 0.0004,
          DISAGREE: 0.99383},
    GENDER: {AGREE: 0.5, DISAGREE: 0.5},
    ADDRESS: {HOUSEHOLD: 0.00002, SAME_POSTCODE: 0.0004, SAME_STREET: 0.00005,
              SAME_DISTRICT: 0.002, DISAGREE: 0.99753},
    UPN: {AGREE: 0.000001, DISAGREE: 0.999999},
}
PSEUDO_PAIRS = 2_000
PSEUDO_RECORDS = 1_000
SWAPPED_NAMES_PENALTY = 2.0
PAIR_EXCESS_BITS = 1.0  # a name pair is kept only when it is this much commoner than chance
SIBLING_FAMILY_BITS = 1.0  # what a family name still says once the household agrees
NEAR_MISSES = frozenset({NICKNAME, VARIANT, TYPO, TRANSLITERATED, FUZZY_HIGH, FUZZY_LOW, PART})
NEAR_MISS_GAP = 0.5
PART_BOUNDS_CACHE = 131_072  # reported names whose bounds are kept (NameBound)
TF_BITS_CACHE = 262_144  # values whose term-frequency weights are kept
U_SAMPLE_PAIRS = 40_000


@dataclass(frozen=True)
class Weights:
    """Per-level match weights in bits, with term-frequency counts for exact levels."""

    bits: dict[str, dict[str, float]]
    counts: dict[str, Counter[Hashable]]
    size: int
    m: Mapping[str, Mapping[str, float]]
    u: Mapping[str, Mapping[str, float]]
    # other children sharing a (given form, family name) pair, for the pairs far commoner
    # than their names' shares multiplied (name_pairs)
    pairs: Mapping[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    # per field and set of exact levels, the largest near-miss and other weights (NameBound)
    maxima: dict[tuple[str, tuple[str, ...]], tuple[float, float]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False)
    # per field, level and value, its term-frequency weight (a birth date's, a name's)
    tf_bits: dict[tuple[str, str, Hashable], float] = dataclasses.field(
        default_factory=dict, compare=False, repr=False)
    # per field and reported name, its exact and other bounds (NameBound)
    part_bounds: dict[tuple[str, tuple[str, ...]], tuple[float, float]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False)

    def share(self, field: str, level: str, value: Hashable) -> float:
        """Return the share of roster records holding a value, shrunk towards U_PRIORS."""
        prior_share = U_PRIORS[field][level] * PSEUDO_RECORDS
        return (self.counts[field][value] + prior_share) / (self.size + PSEUDO_RECORDS)

    def level_bits(self, field: str, level: str, value: Hashable = None) -> float:
        """Return log2(m/u) for a level, using the value's frequency on exact levels."""
        if value is None:
            return 0.0 if level == MISSING else self.bits[field][level]
        if level == MISSING:
            return 0.0
        if (field, level) not in TF_LEVELS:
            return self.bits[field][level]
        key = (field, level, value)
        bits = self.tf_bits.get(key)
        if bits is None:
            if len(self.tf_bits) >= TF_BITS_CACHE:
                self.tf_bits.clear()
            bits = self.tf_bits[key] = math.log2(self.m[field][level]
                                                 / self.share(field, level, value))
        return bits

    def pair_excess(self, given: str, family: str) -> float:
        """Return the bits by which agreeing on both names is commoner than agreeing on each
        independently would be (0 when it is not): the pair's share among the other
        children on the roster against the product of the two names' shares."""
        others = self.pairs.get((given, family), 0)
        if not others:
            return 0.0
        return max(0.0, math.log2(self.pair_share(others) / self.independent(given, family)))

    def independent(self, given: str, family: str) -> float:
        """Return the share of records agreeing on both names were the names independent."""
        return self.share(GIVEN, EXACT, given) * self.share(FAMILY, EXACT, family)

    def pair_share(self, others: int) -> float:
        """Return the share of a name pair held by `others` other children, shrunk like the
        single names' shares."""
        prior_share = U_PRIORS[GIVEN][EXACT] * U_PRIORS[FAMILY][EXACT] * PSEUDO_RECORDS
        return (others + prior_share) / (self.size + PSEUDO_RECORDS)

    def is_known_given(self, forms: tuple[str, ...]) -> bool:
        """Tell whether a reported given name is a real name (on the roster or a nickname)."""
        counts = self.counts[GIVEN]
        return any(counts[form] >= 2 or nickname_relatives(form) for form in forms)


def household_key(profile: Profile) -> tuple[str, str]:
    """Return the term-frequency key of a household."""
    return profile.postcode, profile.house


def _level_counts(pairs: Sequence[tuple[Profile, Profile]]) -> dict[str, Counter[str]]:
    """Count comparison levels over pairs (names in their given order)."""
    counts: dict[str, Counter[str]] = {field: Counter() for field in M_START}
    for child, pupil in pairs:
        counts[GIVEN][compare_given(child.given, pupil.given, pupil.preferred)[0]] += 1
        counts[FAMILY][compare_family(child.family, pupil.family, pupil.former)[0]] += 1
        counts[DOB][compare_dob(child.dob, pupil.dob)] += 1
        counts[GENDER][compare_gender(child.gender, pupil.gender)] += 1
        counts[ADDRESS][compare_address(child, pupil)] += 1
        counts[UPN][compare_upn(child.upn, pupil.upn)] += 1
    return counts


def _sample_pairs(
    profiles: Sequence[Profile], size: int, seed: int
) -> list[tuple[Profile, Profile]]:
    """Draw random ordered pairs of distinct pupils."""
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    count = len(profiles)
    if count < 2:
        return []
    pairs = []
    for _ in range(size):
        first, second = rng.randrange(count), rng.randrange(count - 1)
        pairs.append((profiles[first], profiles[second + (second >= first)]))
    return pairs


def estimate_u(
    profiles: Sequence[Profile], *, pairs: int = U_SAMPLE_PAIRS, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Estimate u per field and level from random roster pairs, shrunk towards U_PRIORS.

    The pairs are drawn from the profiles in an order of their own content, not the order
    the rows were read in (PostgreSQL sets none): the same roll gives the same weights, and
    so the same decisions, however its rows were laid out."""
    counts = _level_counts(_sample_pairs(sorted(profiles), pairs, seed))
    u: dict[str, dict[str, float]] = {}
    for field, levels in M_START.items():
        seen = sum(counts[field][level] for level in levels)
        u[field] = {
            level: (counts[field][level] + PSEUDO_PAIRS * U_PRIORS[field][level])
            / (seen + PSEUDO_PAIRS)
            for level in levels
        }
    # A typo is a misspelling that is no real name, which random roster pairs never show;
    # a random pupil is one slip away from it about as often as from any name.
    u[GIVEN][TYPO] = u[GIVEN][FUZZY_HIGH]
    return u


class _SharedOnly(Counter[Hashable]):
    """Counts of values every one of which is on the roster: only those held by several
    records are kept, any other counts once. A UPN and a household are only ever looked up
    for a pupil's own value, and most belong to one record: a national roll need not hold
    a count for each of its millions (bench/match_memory.py)."""

    def __missing__(self, key: Hashable) -> int:
        return 1


def _shared_only(counts: Counter[Hashable]) -> _SharedOnly:
    """Keep the values counted more than once."""
    return _SharedOnly({value: count for value, count in counts.items() if count > 1})


def _value_counts(profiles: Sequence[Profile]) -> dict[str, Counter[Hashable]]:
    """Count values for the term-frequency levels."""
    counts: dict[str, Counter[Hashable]] = {field: Counter() for field in M_START}
    for profile in profiles:
        counts[GIVEN].update(set(profile.given + profile.preferred))
        counts[FAMILY][profile.family[-1] if profile.family else ""] += 1
        counts[DOB][profile.dob] += 1
        counts[ADDRESS][household_key(profile)] += 1
        counts[UPN][profile.upn] += 1
    counts[ADDRESS] = _shared_only(counts[ADDRESS])
    counts[UPN] = _shared_only(counts[UPN])
    return counts


def name_pairs(profiles: Sequence[Profile], weights: Weights) -> dict[tuple[str, str], int]:
    """Count, per (given form, family name) pair, the other children on the roster who bear
    it, keeping only the pairs at least PAIR_EXCESS_BITS commoner than their names' shares
    multiplied (few pairs: the rest weigh as independent names).

    A child is counted once per date of birth, so a pupil on two rolls, or who moved
    school, is not their own namesake.
    """
    people = {(form, profile.family[-1], profile.dob)
              for profile in profiles if profile.family
              for form in set(profile.given + profile.preferred)}
    counts = Counter((given, family) for given, family, _ in people)
    floor = 2.0 ** PAIR_EXCESS_BITS
    return {
        pair: count - 1 for pair, count in counts.items()
        if count > 1 and weights.pair_share(count - 1) >= floor * weights.independent(*pair)
    }


def estimate_weights(profiles: Sequence[Profile], *, seed: int = 0) -> Weights:
    """Build the weights for a roster: m as learnt by EM, random pairs and frequencies for u."""
    m = learned_m()
    u = estimate_u(profiles, seed=seed)
    bits = {
        field: {level: math.log2(m[field][level] / u[field][level]) for level in levels}
        for field, levels in M_START.items()
    }
    weights = Weights(bits, _value_counts(profiles), len(profiles), m, u)
    return dataclasses.replace(weights, pairs=name_pairs(profiles, weights))


def _near_miss_cap(weights: Weights, field: str, reported: tuple[str, ...]) -> float:
    """Return the most a near miss may weigh: a little less than an exact match would."""
    if not reported:
        return 0.0
    return weights.level_bits(field, EXACT, reported[0 if field == GIVEN else -1]) - NEAR_MISS_GAP


def _name_bits(
    given: tuple[str, ...], family: tuple[str, ...], pupil: Profile, weights: Weights
) -> tuple[float, float, str, str]:
    """Weigh the two name fields in one orientation: (given bits, family bits, levels)."""
    given_level, given_value = compare_given(given, pupil.given, pupil.preferred)
    if given_level == FUZZY_HIGH and not weights.is_known_given(given):
        given_level = TYPO
    elif given_level == FUZZY_LOW and weights.is_known_given(given):
        # Alice and Alfie: a loose likeness between two real names is no more a misspelling
        # than a close one is (Eva and Ava), so it weighs as that
        given_level = FUZZY_HIGH
    family_level, family_value = compare_family(family, pupil.family, pupil.former)
    given_bits = weights.level_bits(GIVEN, given_level, given_value or None)
    if given_level in NEAR_MISSES:
        given_bits = min(given_bits, _near_miss_cap(weights, GIVEN, given))
    family_bits = weights.level_bits(FAMILY, family_level, family_value or None)
    if family_level in NEAR_MISSES:
        family_bits = min(family_bits, _near_miss_cap(weights, FAMILY, family))
    elif family_level == EXACT and given_level in (EXACT, PREFERRED):
        family_bits -= weights.pair_excess(given_value, family_value)
    return given_bits, family_bits, given_level, family_level


Scored = tuple[float, dict[str, str], dict[str, float]]  # total bits, levels, bits per field


def score_names(child: Profile, pupil: Profile, weights: Weights) -> Scored:
    """Weigh the names, trying given and family swapped when that agrees better."""
    given_bits, family_bits, given, family = _name_bits(child.given, child.family, pupil, weights)
    straight: Scored = (given_bits + family_bits, {GIVEN: given, FAMILY: family},
                        {GIVEN: given_bits, FAMILY: family_bits})
    if given in STRONG_GIVEN or family in STRONG_FAMILY:
        return straight
    s_given_bits, s_family_bits, s_given, s_family = _name_bits(
        child.family, child.given, pupil, weights)
    swapped = s_given_bits + s_family_bits - SWAPPED_NAMES_PENALTY
    if s_given in STRONG_GIVEN and s_family in STRONG_FAMILY and swapped > straight[0]:
        return swapped, {GIVEN: s_given, FAMILY: s_family, NAME_ORDER: "swapped"}, {
            GIVEN: s_given_bits, FAMILY: s_family_bits, NAME_ORDER: -SWAPPED_NAMES_PENALTY}
    return straight


def score_context(child: Profile, pupil: Profile, weights: Weights) -> Scored:
    """Weigh every field but the names: date of birth, gender, address and UPN."""
    dob = compare_dob(child.dob, pupil.dob)
    gender = compare_gender(child.gender, pupil.gender)
    address = compare_address(child, pupil)
    upn = compare_upn(child.upn, pupil.upn)
    household = household_key(pupil) if address == HOUSEHOLD else None
    bits = {
        DOB: weights.level_bits(DOB, dob, pupil.dob if dob == EXACT else None),
        GENDER: weights.level_bits(GENDER, gender),
        ADDRESS: weights.level_bits(ADDRESS, address, household),
        UPN: weights.level_bits(UPN, upn, pupil.upn if upn == AGREE else None),
    }
    return sum(bits.values()), {DOB: dob, GENDER: gender, ADDRESS: address, UPN: upn}, bits


def context_bits(child: Profile, pupil: Profile, weights: Weights) -> float:
    """Return score_context's total alone, the same sum in the same order, building no
    levels or explanation: a field the report lacks adds nothing, so it is not compared."""
    dob = compare_dob(child.dob, pupil.dob)
    total = weights.level_bits(DOB, dob, pupil.dob if dob == EXACT else None)
    if child.gender:
        total += weights.level_bits(GENDER, compare_gender(child.gender, pupil.gender))
    if child.postcode or child.street:
        address = compare_address(child, pupil)
        total += weights.level_bits(ADDRESS, address,
                                    household_key(pupil) if address == HOUSEHOLD else None)
    if child.upn:
        upn = compare_upn(child.upn, pupil.upn)
        total += weights.level_bits(UPN, upn, pupil.upn if upn == AGREE else None)
    return total


def sibling_overlap(levels: dict[str, str], bits: dict[str, float]) -> float:
    """Return the bits to take back when the household and the family name agree together.

    Brothers and sisters share both, so among children of one household the family name is
    next to no evidence: counting it on top of the household, as if independent, would make
    a sibling who is on no roll look like the reported child.
    """
    if levels.get(ADDRESS) != HOUSEHOLD:
        return 0.0
    return max(0.0, bits.get(FAMILY, 0.0) - SIBLING_FAMILY_BITS)


class _OrientedBound:
    """A bound on what a report's names, read in one order, add against one pupil."""

    __slots__ = ("_family", "_family_exact", "_family_near", "_forms", "_given_exact",
                 "_given_near", "_penalty", "ceiling")

    def __init__(self, given: tuple[str, ...], family: tuple[str, ...], weights: Weights,
                 penalty: float) -> None:
        self._forms = frozenset(given)
        self._given_exact, self._given_near = _part_bounds(weights, GIVEN, given)
        self._family = family[-1] if family else None
        self._family_exact, self._family_near = _part_bounds(weights, FAMILY, family)
        self._penalty = penalty
        self.ceiling = (max(self._given_exact, self._given_near)
                        + max(self._family_exact, self._family_near) - penalty)

    def of(self, pupil: Profile) -> float:
        """Return the most the names can add against this pupil in this order."""
        given = self._given_near
        if not (self._forms.isdisjoint(pupil.given) and self._forms.isdisjoint(pupil.preferred)):
            given = max(given, self._given_exact)
        family = self._family_near
        if pupil.family and pupil.family[-1] == self._family:
            family = max(family, self._family_exact)
        return given + family - self._penalty


def _part_bounds(weights: Weights, field: str, reported: tuple[str, ...]
                 ) -> tuple[float, float]:
    """Return the most a reported name can weigh in a field agreeing exactly (its form's
    term-frequency weight; for a given name, as a preferred name too) and at any other level,
    once per name and roster's weights (most reports bear common names)."""
    key = (field, reported)
    bounds = weights.part_bounds.get(key)
    if bounds is not None:
        return bounds
    if field == GIVEN:
        exact = max((weights.level_bits(GIVEN, level, form) for form in reported
                     for level in (EXACT, PREFERRED)), default=-math.inf)
        bounds = exact, _near_bound(weights, GIVEN, reported, (EXACT, PREFERRED))
    else:  # a missing family name weighs nothing
        exact = weights.level_bits(FAMILY, EXACT, reported[-1]) if reported else -math.inf
        bounds = exact, max(0.0, _near_bound(weights, FAMILY, reported, (EXACT,)))
    if len(weights.part_bounds) >= PART_BOUNDS_CACHE:
        weights.part_bounds.clear()
    weights.part_bounds[key] = bounds
    return bounds


def _near_bound(weights: Weights, field: str, reported: tuple[str, ...],
                exact: tuple[str, ...]) -> float:
    """Return the most any level but the exact ones can weigh, near misses capped as
    _name_bits caps them: the largest of min(near miss, cap) is min(largest near miss, cap)."""
    near, other = _level_maxima(weights, field, exact)
    return max(min(near, _near_miss_cap(weights, field, reported)), other)


def _level_maxima(weights: Weights, field: str, exact: tuple[str, ...]) -> tuple[float, float]:
    """Return the largest weight of a near-miss level and of any other level but the exact
    ones, once per roster's weights."""
    key = (field, exact)
    maxima = weights.maxima.get(key)
    if maxima is None:
        levels = [(level, bits) for level, bits in weights.bits[field].items()
                  if level not in exact]
        maxima = weights.maxima[key] = (
            max((bits for level, bits in levels if level in NEAR_MISSES), default=-math.inf),
            max((bits for level, bits in levels if level not in NEAR_MISSES), default=-math.inf))
    return maxima


class NameBound:
    """An upper bound on what a report's names add against a pupil (score_names), in either
    order, from exact agreement alone: set and string tests, no fuzzy comparison.

    A name that agrees exactly may weigh its form's term-frequency weight; any other level
    weighs at most the best near miss, capped as scoring caps it. A rare reported name
    weighs far more exactly than nearly, so a pupil agreeing exactly on neither name is
    bounded well below the report's ceiling, and can be passed over unweighed.
    """

    __slots__ = ("_straight", "_swapped", "ceiling")

    def __init__(self, child: Profile, weights: Weights) -> None:
        self._straight = _OrientedBound(child.given, child.family, weights, 0.0)
        self._swapped = _OrientedBound(child.family, child.given, weights,
                                       SWAPPED_NAMES_PENALTY)
        self.ceiling = max(self._straight.ceiling, self._swapped.ceiling)

    def of(self, pupil: Profile) -> float:
        """Return the most the names can add against this pupil."""
        return max(self._straight.of(pupil), self._swapped.of(pupil))


def pair_levels(child: Profile, pupil: Profile, weights: Weights) -> dict[str, str]:
    """Return the level every field of a pair reached (what EM learns m from)."""
    return score_names(child, pupil, weights)[1] | score_context(child, pupil, weights)[1]
