"""Normalised comparison profiles of roster rows and reports, and person grouping."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date
from functools import lru_cache

from stdnum.gb import upn as upn_number

from services.matcher.comparisons import Profile
from services.matcher.names import (
    fold_text,
    name_forms,
    normalise_postcode,
    postcode_outward,
    split_address,
)
from services.matcher.records import ChildReport, Pupil

_intern = sys.intern  # a roster's profiles share one copy of each repeated text


@lru_cache(maxsize=262_144)
def _roster_forms(text: str) -> tuple[str, ...]:
    """name_forms, one shared tuple of interned tokens per distinct name."""
    return tuple(map(_intern, name_forms(text)))


@lru_cache(maxsize=65_536)
def _ordinal(born: date) -> int:
    """A date's ordinal, one int object per date."""
    return born.toordinal()


def pupil_profile(pupil: Pupil) -> Profile:
    """Normalise a roster row for comparison (a None in an optional text field counts as '')."""
    postcode = _intern(normalise_postcode(pupil.postcode or ""))
    house, street = split_address(pupil.address_line1 or "")
    upn = (pupil.upn or "").strip().upper()
    return Profile(
        given=_roster_forms(pupil.given_name), preferred=_roster_forms(pupil.preferred_name or ""),
        family=_roster_forms(pupil.family_name),
        former=_roster_forms(pupil.former_family_name or ""),
        dob=_ordinal(pupil.date_of_birth),
        gender=_intern((pupil.gender or "").strip().upper()[:1]), postcode=postcode,
        outward=_intern(postcode_outward(postcode)), house=_intern(house),
        street=_intern(street), upn=pupil.upn if upn == pupil.upn else upn,
    )


def report_profile(child: ChildReport) -> Profile:
    """Normalise a police report for comparison; an invalid UPN counts as absent."""
    postcode = normalise_postcode(child.postcode or "")
    house, street = split_address(child.address_line1 or "")
    upn = (child.upn or "").strip().upper()
    return Profile(
        given=name_forms(child.given_name), preferred=(), family=name_forms(child.family_name),
        former=(), dob=child.date_of_birth.toordinal(),
        gender=(child.gender or "").strip().upper()[:1], postcode=postcode,
        outward=postcode_outward(postcode), house=house, street=street,
        upn=upn if upn and upn_number.is_valid(upn) else "",
    )


def _person_keys(pupil: Pupil, profile: Profile) -> list[tuple[str, ...]]:
    """Return what makes two rows one child: the UPN, or name and birth date on an M/S row."""
    keys: list[tuple[str, ...]] = [("upn", profile.upn)] if profile.upn else []
    if pupil.enrolment_status in ("M", "S"):
        names = (fold_text(pupil.given_name), fold_text(pupil.family_name))
        keys.append(("dual", *names, str(profile.dob)))
    return keys


def group_people(pupils: Sequence[Pupil], profiles: Sequence[Profile]) -> list[int]:
    """Return a person id per row so one child's rows at several schools share an id."""
    parent = list(range(len(pupils)))

    def find(row: int) -> int:
        while parent[row] != row:
            parent[row] = parent[parent[row]]
            row = parent[row]
        return row

    first_row: dict[tuple[str, ...], int] = {}
    for row, (pupil, profile) in enumerate(zip(pupils, profiles, strict=True)):
        for key in _person_keys(pupil, profile):
            parent[find(row)] = find(first_row.setdefault(key, row))
    return [find(row) for row in range(len(pupils))]
