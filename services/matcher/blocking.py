"""Candidate blocking: cheap keys that still meet when a name or a date is mistyped."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Hashable, Iterable, Sequence
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np

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
_BISECT_UP_TO = 10  # this many keys or fewer are each bisected: numpy costs more up to there


class Postings:
    """One family of blocking keys in CSR form: sorted int64 keys, each with its run of
    uint32 pupil ids (bench/match_memory.py: about 16 bytes a posting instead of a dict of
    Python containers). Keys that are not integers are hashed: a hash collision can only add
    a candidate, which the score then weighs like any other.

    `add` collects (key, pupil) pairs in flat arrays; `freeze` sorts them once, keeping each
    key's pupils in the order they were added, and the postings are read-only after that.
    """

    __slots__ = ("_ids", "_keys", "_probe", "_starts")

    def __init__(self) -> None:
        self._keys: Any = array("q")
        self._ids: Any = array("I")
        self._starts: Any = None
        self._probe: Any = None  # the keys seen by numpy, no copy: looked up several at once

    def add(self, key: int, pupil_id: int) -> None:
        """Post a pupil under a key (before freeze)."""
        self._keys.append(key)
        self._ids.append(pupil_id)

    def freeze(self) -> None:
        """Sort the pairs by key into CSR form."""
        keys = np.frombuffer(self._keys, dtype=np.int64) if len(self._keys) else np.zeros(
            0, np.int64)
        ids = np.frombuffer(self._ids, dtype=np.uint32) if len(self._ids) else np.zeros(
            0, np.uint32)
        order = np.argsort(keys, kind="stable")
        keys, ids = keys[order], ids[order]
        unique, starts = np.unique(keys, return_index=True)
        # numpy sorts; plain arrays serve: a bisect on them costs no numpy call per look-up
        self._keys = _flat("q", unique)
        self._ids = _flat("I", ids)
        self._starts = _flat("q", np.append(starts, len(ids)).astype(np.int64))
        self._probe = np.frombuffer(self._keys, dtype=np.int64) if len(self._keys) else None

    def get(self, key: int) -> list[int]:
        """Return the pupils posted under one key, in the order they were added."""
        if self._starts is None:  # read before BlockingIndex.freeze: freeze now
            self.freeze()
        keys = self._keys
        at = bisect_left(keys, key)
        if at == len(keys) or keys[at] != key:
            return []
        run: list[int] = self._ids[self._starts[at]:self._starts[at + 1]].tolist()
        return run

    def get_all(self, keys: Iterable[int]) -> list[list[int]]:
        """Return each key's pupils."""
        return [self.get(key) for key in keys]

    def runs(self, keys: Sequence[int]) -> list[list[int]]:
        """Return the pupils of the keys that are posted, key by key, leaving out the keys
        that are not: most keys a report looks up are posted nowhere, and one numpy search
        for them all costs less than a bisect each."""
        if self._starts is None:
            self.freeze()
        if len(keys) <= _BISECT_UP_TO or self._probe is None:
            return [run for run in map(self.get, keys) if run]
        table = self._probe
        wanted = np.fromiter(keys, dtype=np.int64, count=len(keys))
        at = np.searchsorted(table, wanted)
        at[at == len(table)] = 0  # past the end: posted nowhere, as the comparison shows
        posted = at[table[at] == wanted].tolist()
        ids, starts = self._ids, self._starts
        return [ids[starts[slot]:starts[slot + 1]].tolist() for slot in posted]


def _flat(typecode: str, values: Any) -> Any:
    """Copy a numpy array into a plain array of the same machine type."""
    flat = array(typecode)
    flat.frombytes(np.ascontiguousarray(values).tobytes())
    return flat


def _hashed(key: Hashable) -> int:
    """Return a non-integer key as a 64-bit integer (stable within the process)."""
    return hash(key)


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


def _initials_keys(dob: int, given: tuple[str, ...], family: tuple[str, ...]) -> list[int]:
    """Return the keys of a birth date with a given name's and a family name's initials: both
    names mistyped past their sound, but not their first letters, still meet on the date."""
    return [_hashed((dob, first, last))
            for first in _initials(given) for last in _initials(family)]


class BlockingIndex:
    """Inverted indexes from blocking keys to pupil ids, frozen into CSR form once built."""

    def __init__(self) -> None:
        self._dobs: Any = array("i")
        self._by_upn = Postings()
        self._by_dob_name = Postings()
        self._by_names = Postings()
        self._by_postcode_name = Postings()
        self._by_pair = Postings()
        self._by_initial = Postings()
        self._by_dob_initials = Postings()

    def add(self, profile: Profile) -> int:
        """Index one pupil under every key it can be found by and return its id."""
        pupil_id = len(self._dobs)
        self._dobs.append(profile.dob)
        given = _codes(profile.given + profile.preferred)
        family = _codes(profile.family + profile.former)
        if profile.upn:
            self._by_upn.add(_hashed(profile.upn), pupil_id)
        for code in given | family:
            if profile.postcode:
                self._by_postcode_name.add(_hashed((profile.postcode, code)), pupil_id)
        # consonant codes meet on the birth date only, where the report looks them up
        for code in given | family | _skeleton_codes(profile.given + profile.family):
            self._by_dob_name.add(profile.dob * _CODE_SPACE + code, pupil_id)
        year, month_day = _birth_parts(profile.dob)
        for key in _initials_keys(profile.dob, profile.given + profile.preferred,
                                  profile.family + profile.former):
            self._by_dob_initials.add(key, pupil_id)
        for given_code in given:
            for family_code in family:
                pair = given_code * _CODE_SPACE + family_code
                for key in _pair_keys(pair, profile.dob):
                    self._by_names.add(key, pupil_id)
                self._by_pair.add(pair, pupil_id)
        for codes, initials in ((given, _initials(profile.family + profile.former)),
                                (family, _initials(profile.given + profile.preferred))):
            for name_code_ in codes:
                for initial in initials:
                    for born in (year, month_day):  # a slip changes one of them, not both
                        self._by_initial.add(_hashed((name_code_, initial, born)), pupil_id)
        return pupil_id

    def freeze(self) -> None:
        """Sort every key family into CSR form: call once, after the last add."""
        for postings in (self._by_upn, self._by_dob_name, self._by_names,
                         self._by_postcode_name, self._by_pair, self._by_initial,
                         self._by_dob_initials):
            postings.freeze()

    def candidates(self, child: Profile) -> set[int]:
        """Return the ids of pupils sharing at least one blocking key with a report."""
        return self.close_candidates(child) | self.loose_candidates(child)

    def close_candidates(self, child: Profile) -> set[int]:
        """Return the pupils sharing a close key: the UPN, a name and the birth date (or its
        swap), both names' initials and the birth date (or its swap), both names and a near
        birth date, or a name and the postcode."""
        given = _given_codes_with_nicknames(child.given)
        family = _codes(child.family)
        found: set[int] = set(self._by_upn.get(_hashed(child.upn))) if child.upn else set()
        skeletons = _skeleton_codes(child.given + child.family)
        self._add_same_dob(found, child.dob, _codes(child.given) | family | skeletons)
        swapped = swapped_dob(child.dob)
        for dob in (child.dob,) if swapped is None else (child.dob, swapped):
            _update(found, self._by_dob_initials.runs(
                _initials_keys(dob, child.given, child.family)))
        self._add_same_names(found, child.dob, given, family)
        if child.postcode:
            _update(found, self._by_postcode_name.runs(
                [_hashed((child.postcode, code)) for code in given | family]))
        return found

    def loose_candidates(self, child: Profile) -> set[int]:
        """Return pupils whose two names both sound alike whatever the birth date (rare pairs
        only), and pupils with one name and the other's initial alike born in the same year
        or on the same day of the year (a name mistyped and the date slipped), where few
        pupils share the key."""
        given = _given_codes_with_nicknames(child.given)
        family = _codes(child.family)
        found: set[int] = set()
        pairs = list({g * _CODE_SPACE + f for g in given for f in family})
        _update(found, self._by_pair.runs(pairs), _LOOSE_LIMIT)
        keys = [_hashed((code, initial, born))
                for codes, initials in ((given, _initials(child.family)),
                                        (family, _initials(child.given)))
                for code in codes for initial in initials
                for born in _birth_parts(child.dob)]
        _update(found, self._by_initial.runs(keys), _LOOSE_LIMIT)
        return found

    def _add_same_dob(self, found: set[int], dob: int, codes: frozenset[int]) -> None:
        """Add pupils born on the date (or its day/month swap) sharing any name code."""
        swapped = swapped_dob(dob)
        days = (dob,) if swapped is None else (dob, swapped)
        _update(found, self._by_dob_name.runs(
            [day * _CODE_SPACE + code for day in days for code in codes]))

    def _add_same_names(
        self, found: set[int], dob: int, given: frozenset[int], family: frozenset[int]
    ) -> None:
        """Add pupils sharing both name codes (either order) and born within one slip."""
        near, dobs = nearby_dobs(dob), self._dobs
        pairs = {g * _CODE_SPACE + f for g in given for f in family}
        pairs.update(f * _CODE_SPACE + g for g in given for f in family)
        keys = [key for pair in pairs for key in _pair_keys(pair, dob)]
        for postings in self._by_names.runs(keys):
            found.update(pupil for pupil in postings if dobs[pupil] in near)


def _update(found: set[int], runs: Iterable[list[int]], limit: int | None = None) -> None:
    """Add each key's pupils in turn; with a limit, only keys few pupils share."""
    for run in runs:
        if limit is None or len(run) <= limit:
            found.update(run)
