"""Per-field comparison levels between a police report and a roster pupil."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

import jellyfish
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from services.matcher.dates import slipped_dobs, swapped_dob, year_off_dobs
from services.matcher.names import (
    are_nicknames,
    consonant_skeleton,
    latin_form,
    writes_few_vowels,
)

GIVEN, FAMILY, DOB, GENDER, ADDRESS, UPN = (
    "given_name", "family_name", "date_of_birth", "gender", "address", "upn",
)
NAME_ORDER, SCHOOL_HINT = "name_order", "school_hint"

EXACT, PREFERRED, NICKNAME, FORMER, PART = "exact", "preferred", "nickname", "former", "part"
VARIANT, TYPO, TRANSLITERATED = "spelling_variant", "typo", "transliterated"
FUZZY_HIGH, FUZZY_LOW, DISAGREE, MISSING, AGREE = (
    "fuzzy_high", "fuzzy_low", "disagree", "missing", "agree",
)
DAY_MONTH_SWAP, ONE_DIGIT, YEAR_OFF = "day_month_swap", "one_digit", "year_off"
HOUSEHOLD, SAME_POSTCODE, SAME_STREET, SAME_DISTRICT = (
    "same_household", "same_postcode", "same_street", "same_district",
)

STRONG_GIVEN = frozenset({EXACT, PREFERRED, NICKNAME, VARIANT, TYPO, TRANSLITERATED})
STRONG_FAMILY = frozenset({EXACT, FORMER, PART, FUZZY_HIGH, TRANSLITERATED})
CLOSE_DOB = frozenset({EXACT, DAY_MONTH_SWAP, ONE_DIGIT, YEAR_OFF})

_HIGH_SIMILARITY = 0.92
_LOW_SIMILARITY = 0.84
_VARIANT_SIMILARITY = 0.9
_STREET_SIMILARITY = 85.0


class Profile(NamedTuple):
    """The normalised features of one record, pupil or report, used for comparison."""

    given: tuple[str, ...]
    preferred: tuple[str, ...]
    family: tuple[str, ...]
    former: tuple[str, ...]
    dob: int
    gender: str
    postcode: str
    outward: str
    house: str
    street: str
    upn: str


_metaphone = lru_cache(maxsize=131_072)(jellyfish.metaphone)
_nysiis = lru_cache(maxsize=131_072)(jellyfish.nysiis)
_NEAR_RANK = {TRANSLITERATED: 0, NICKNAME: 1, VARIANT: 2, FUZZY_HIGH: 3, FUZZY_LOW: 4,
              DISAGREE: 5}


def _sounds_alike(first: str, second: str) -> bool:
    """Tell whether two spellings are phonetic variants (Mohammed/Muhammad, Sophia/Sofia)."""
    if _metaphone(first) != _metaphone(second):
        return False
    same_nysiis = _nysiis(first) == _nysiis(second)
    return same_nysiis or JaroWinkler.similarity(first, second) >= _VARIANT_SIMILARITY


def _same_transliterated(first: str, second: str) -> bool:
    """Tell whether two forms, one not in Latin letters, agree once transliterated (or, for a
    script that writes few vowels, agree in their consonants: محمد and Mohammed)."""
    if latin_form(first) == latin_form(second):
        return True
    if not (writes_few_vowels(first) or writes_few_vowels(second)):
        return False
    skeleton = consonant_skeleton(first)
    return len(skeleton) >= 2 and skeleton == consonant_skeleton(second)


@lru_cache(maxsize=262_144)
def _near_level(first: str, second: str, nicknames: bool) -> str:
    """Return how nearly two different name forms agree, short of exactly; a form in another
    script is compared with its transliteration."""
    # a script that leaves vowels out transliterates to a few consonants (حداد hdd, أحمد
    # hmd): one letter of those is no keying slip but another name
    few_vowels = writes_few_vowels(first) or writes_few_vowels(second)
    if not (first.isascii() and second.isascii()):
        if _same_transliterated(first, second):
            return TRANSLITERATED
        first, second = latin_form(first), latin_form(second)
    if len(first) < 2 or len(second) < 2:
        return DISAGREE
    if nicknames and are_nicknames(first, second):
        return NICKNAME
    if _sounds_alike(first, second):
        return VARIANT
    similarity = JaroWinkler.similarity(first, second)
    one_slip = (not few_vowels and min(len(first), len(second)) > 2
                and OSA.distance(first, second, score_cutoff=1) <= 1)
    if similarity >= _HIGH_SIMILARITY or one_slip:
        return FUZZY_HIGH
    two_slips = not few_vowels and min(len(first), len(second)) > 4 and OSA.distance(
        first, second, score_cutoff=2) <= 2
    return FUZZY_LOW if similarity >= _LOW_SIMILARITY or two_slips else DISAGREE


def _best_near_level(pairs: Iterable[tuple[str, str]], nicknames: bool) -> str:
    """Return the nearest level any pair of forms reaches."""
    best, rank = DISAGREE, _NEAR_RANK[DISAGREE]
    for first, second in pairs:
        level = _near_level(first, second, nicknames)
        if _NEAR_RANK[level] < rank:
            best, rank = level, _NEAR_RANK[level]
    return best


def _anchored_pairs(child: tuple[str, ...], pupil: tuple[str, ...]) -> set[tuple[str, str]]:
    """Return pairs of given-name forms where one side is a first or whole name.

    Twins may share a middle name, so middle name against middle name proves nothing.
    """
    if len(child) == 1 and len(pupil) == 1:
        return {(child[0], pupil[0])}
    pairs = {(a, b) for a in (child[:1] + child[-1:]) for b in pupil}
    pairs.update((a, b) for a in child for b in (pupil[:1] + pupil[-1:]))
    return pairs


@lru_cache(maxsize=262_144)
def compare_given(
    child: tuple[str, ...], given: tuple[str, ...], preferred: tuple[str, ...]
) -> tuple[str, str]:
    """Return the given-name level and the agreeing form (for term frequency)."""
    on_given = _anchored_pairs(child, given)
    on_preferred = _anchored_pairs(child, preferred)
    for level, pairs in ((EXACT, on_given), (PREFERRED, on_preferred)):
        agreeing = [a for a, b in pairs if a == b]
        if agreeing:
            return level, min(agreeing)
    near = _best_near_level(on_given | on_preferred, nicknames=True)
    if near == FUZZY_LOW and not _low_on_parts(child, given, preferred):
        # "Amelia Rose" and "Aisha Rose" are alike only as whole names: their shared middle
        # name (twins often share one) makes the joined forms look close
        return DISAGREE, ""
    return near, ""


def _low_on_parts(child: tuple[str, ...], given: tuple[str, ...],
                  preferred: tuple[str, ...]) -> bool:
    """Tell whether a loose likeness holds between first names, not only whole names."""
    firsts = {(child[0], known[0]) for known in (given, preferred) if child and known}
    return _best_near_level(firsts, nicknames=True) != DISAGREE


def _shares_part(first: tuple[str, ...], second: tuple[str, ...]) -> bool:
    """Tell whether a hyphenated or double name shares a whole part with another."""
    if len(first) == 1 and len(second) == 1:
        return False
    return any(len(part) > 1 and part in second for part in first)


@lru_cache(maxsize=262_144)
def compare_family(
    child: tuple[str, ...], family: tuple[str, ...], former: tuple[str, ...]
) -> tuple[str, str]:
    """Return the family-name level and the agreeing full name (for term frequency)."""
    if not child or not family:
        return MISSING, ""
    if child[-1] == family[-1]:
        return EXACT, family[-1]
    if former and child[-1] == former[-1]:
        return FORMER, ""
    if _shares_part(child, family) or (former and _shares_part(child, former)):
        return PART, ""
    pairs = [(child[-1], known[-1]) for known in (family, former) if known]
    level = _best_near_level(pairs, nicknames=False)
    return (FUZZY_HIGH if level == VARIANT else level), ""


def compare_dob(child: int, pupil: int) -> str:
    """Return the date-of-birth level."""
    if child == pupil:
        return EXACT
    if swapped_dob(child) == pupil:
        return DAY_MONTH_SWAP
    if pupil in slipped_dobs(child):
        return ONE_DIGIT
    return YEAR_OFF if pupil in year_off_dobs(child) else DISAGREE


def compare_gender(child: str, pupil: str) -> str:
    """Return the gender level; anything other than M or F on either side is missing."""
    if child not in ("M", "F") or pupil not in ("M", "F"):
        return MISSING
    return AGREE if child == pupil else DISAGREE


def _same_street(child: Profile, pupil: Profile) -> bool:
    """Tell whether two address lines name the same house on the same street."""
    if not child.house or child.house != pupil.house:
        return False
    return fuzz.ratio(child.street, pupil.street) >= _STREET_SIMILARITY


def compare_address(child: Profile, pupil: Profile) -> str:
    """Return the address level from postcode and first address line together; an address
    absent on either side is missing, which weighs nothing, not a disagreement."""
    if not (child.postcode or child.street) or not (pupil.postcode or pupil.street):
        return MISSING
    if child.postcode and child.postcode == pupil.postcode:
        return HOUSEHOLD if _same_street(child, pupil) else SAME_POSTCODE
    same_district = bool(child.outward) and child.outward == pupil.outward
    if _same_street(child, pupil) and (same_district or not child.postcode):
        return SAME_STREET
    return SAME_DISTRICT if same_district else DISAGREE


def compare_upn(child: str, pupil: str) -> str:
    """Return the UPN level; an absent UPN on either side is missing."""
    if not child or not pupil:
        return MISSING
    return AGREE if child == pupil else DISAGREE
