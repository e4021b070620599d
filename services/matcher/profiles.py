"""Normalised comparison profiles of roster rows and reports, and person grouping."""

from __future__ import annotations

from collections.abc import Sequence

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


def pupil_profile(pupil: Pupil) -> Profile:
    """Normalise a roster row for comparison (a None in an optional text field counts as '')."""
    postcode = normalise_postcode(pupil.postcode or "")
    house, street = split_address(pupil.address_line1 or "")
    return Profile(
        given=name_forms(pupil.given_name), preferred=name_forms(pupil.preferred_name or ""),
        family=name_forms(pupil.family_name), former=name_forms(pupil.former_family_name or ""),
        dob=pupil.date_of_birth.toordinal(), gender=(pupil.gender or "").strip().upper()[:1],
        postcode=postcode, outward=postcode_outward(postcode), house=house, street=street,
        upn=(pupil.upn or "").strip().upper(),
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
        upn=upn if upn_number.is_valid(upn) else "",
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
