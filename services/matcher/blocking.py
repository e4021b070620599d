"""Candidate blocking: cheap keys that still meet when a name or a date is mistyped."""

from __future__ import annotations

from array import array
from collections.abc import Hashable
from datetime import date
from functools import lru_cache
from typing import TypeAlias, TypeVar

from services.matcher.comparisons import Profile
from services.matcher.dates import nearby_dobs, swapped_dob
from services.matcher.names import (
    consonant_skeleton,
    latin_form,
    name_code,
    nickname_relatives,
)

_CODE_SPACE = 10_000  # name codes are four decimal digits
# The loose keys (a name pair whatever the birth date; one name, the other's initial and
# the birth year) are followed only when few pupils share them: common names with a wild
# date of birth are left to the other keys, and to review.
_LOOSE_LIMIT = 50
# most keys hold one pupil: a 1-tuple is the smallest container, then a 32-bit array
Postings: TypeAlias = "tuple[int] | array[int]"
K = TypeVar("K", bound=Hashable)


def _post(index: dict[K, Postings], key: K, pupil_id: int) -> None:
    """Add a pupil to a key's postings."""
    postings = index.get(key)
    if postings is None:
        index[key] = (pupil_id,)
    elif isinstance(postings, tuple):
        index[key] = array("I", (*postings, pupil_id))
    else:
        postings.append(pupil_id)


def _add_rare(found: set[int], postings: Postings | tuple[()]) -> None:
    """Add a loose key's pupils, only when few share it."""
    if len(postings) <= _LOOSE_LIMIT:
        found.update(postings)


@lru_cache(maxsize=262_144)
def _codes(forms: tuple[str, ...]) -> frozenset[int]:
    """Return the phonetic codes of name forms."""
    return frozenset(code for code in map(name_code, forms) if code)


@lru_cache(maxsize=65_536)
def _given_codes_with_nicknames(forms: tuple[str, ...]) -> frozenset[int]:
    """Return the codes of given names and of their nickname relatives."""
    relatives = (relative for form in forms for relative in nickname_relatives(form))
    return _codes(forms) | _codes(tuple(relatives))


@lru_cache(maxsize=262_144)
def _skeleton_codes(forms: tuple[str, ...]) -> frozenset[int]:
    """Return the codes of the names' consonants: محمد (mhmd) meets Mohammed on the same
    birth date though their sounds code differently."""
    return _codes(tuple(consonant_skeleton(form) for form in forms))


@lru_cache(maxsize=65_536)
def _initials(forms: tuple[str, ...]) -> frozenset[str]:
    """Return the first letters (in Latin letters) of name forms."""
    return frozenset(latin[0] for latin in map(latin_form, forms) if latin)


@lru_cache(maxsize=65_536)
def _birth_parts(ordinal: int) -> tuple[int, int]:
    """Return (year, month * 100 + day) of a date ordinal."""
    born = date.fromordinal(ordinal)
    return born.year, born.month * 100 + born.day


def _pair_keys(pair: int, ordinal: int) -> tuple[int, int]:
    """Return the name-pair keys by birth year and by birth day: a slip changes only one."""
    year, month_day = _birth_parts(ordinal)
    return (pair * _CODE_SPACE + year) * 2, (pair * _CODE_SPACE + month_day) * 2 + 1


class BlockingIndex:
    """Inverted indexes from blocking keys to pupil ids."""

    def __init__(self) -> None:
        self._dobs: list[int] = []
        self._by_upn: dict[str, Postings] = {}
        self._by_dob_name: dict[int, Postings] = {}
        self._by_names: dict[int, Postings] = {}
        self._by_postcode_name: dict[tuple[str, int], Postings] = {}
        self._by_pair: dict[int, Postings] = {}
        self._by_initial: dict[tuple[int, str, int], Postings] = {}

    def add(self, profile: Profile) -> int:
        """Index one pupil under every key it can be found by and return its id."""
        pupil_id = len(self._dobs)
        self._dobs.append(profile.dob)
        given = _codes(profile.given + profile.preferred)
        family = _codes(profile.family + profile.former)
        if profile.upn:
            _post(self._by_upn, profile.upn, pupil_id)
        for code in given | family:
            if profile.postcode:
                _post(self._by_postcode_name, (profile.postcode, code), pupil_id)
        # consonant codes meet on the birth date only, where the report looks them up
        for code in given | family | _skeleton_codes(profile.given + profile.family):
            _post(self._by_dob_name, profile.dob * _CODE_SPACE + code, pupil_id)
        year = _birth_parts(profile.dob)[0]
        for given_code in given:
            for family_code in family:
                pair = given_code * _CODE_SPACE + family_code
                for key in _pair_keys(pair, profile.dob):
                    _post(self._by_names, key, pupil_id)
                _post(self._by_pair, pair, pupil_id)
        for codes, initials in ((given, _initials(profile.family + profile.former)),
                                (family, _initials(profile.given + profile.preferred))):
            for name_code_ in codes:
                for initial in initials:
                    _post(self._by_initial, (name_code_, initial, year), pupil_id)
        return pupil_id

    def candidates(self, child: Profile) -> set[int]:
        """Return the ids of pupils sharing at least one blocking key with a report."""
        return self.close_candidates(child) | self.loose_candidates(child)

    def close_candidates(self, child: Profile) -> set[int]:
        """Return the pupils sharing a close key: the UPN, a name and the birth date (or its
        swap), both names and a near birth date, or a name and the postcode."""
        given = _given_codes_with_nicknames(child.given)
        family = _codes(child.family)
        found: set[int] = set(self._by_upn.get(child.upn, ())) if child.upn else set()
        skeletons = _skeleton_codes(child.given + child.family)
        self._add_same_dob(found, child.dob, _codes(child.given) | family | skeletons)
        self._add_same_names(found, child.dob, given, family)
        if child.postcode:
            for code in given | family:
                found.update(self._by_postcode_name.get((child.postcode, code), ()))
        return found

    def loose_candidates(self, child: Profile) -> set[int]:
        """Return pupils whose two names both sound alike whatever the birth date (rare pairs
        only), and pupils with one name and the other's initial alike born in the same year
        (both names mistyped), where few pupils share the key."""
        given = _given_codes_with_nicknames(child.given)
        family = _codes(child.family)
        found: set[int] = set()
        for pair in {g * _CODE_SPACE + f for g in given for f in family}:
            _add_rare(found, self._by_pair.get(pair, ()))
        year = _birth_parts(child.dob)[0]
        for codes, initials in ((given, _initials(child.family)),
                                (family, _initials(child.given))):
            for code in codes:
                for initial in initials:
                    _add_rare(found, self._by_initial.get((code, initial, year), ()))
        return found

    def _add_same_dob(self, found: set[int], dob: int, codes: frozenset[int]) -> None:
        """Add pupils born on the date (or its day/month swap) sharing any name code."""
        swapped = swapped_dob(dob)
        for day in (dob,) if swapped is None else (dob, swapped):
            for code in codes:
                found.update(self._by_dob_name.get(day * _CODE_SPACE + code, ()))

    def _add_same_names(
        self, found: set[int], dob: int, given: frozenset[int], family: frozenset[int]
    ) -> None:
        """Add pupils sharing both name codes (either order) and born within one slip."""
        near, dobs = nearby_dobs(dob), self._dobs
        pairs = {g * _CODE_SPACE + f for g in given for f in family}
        pairs.update(f * _CODE_SPACE + g for g in given for f in family)
        for pair in pairs:
            for key in _pair_keys(pair, dob):
                postings = self._by_names.get(key, ())
                found.update(pupil for pupil in postings if dobs[pupil] in near)
