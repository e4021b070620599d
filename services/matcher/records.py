"""Plain values the matcher works on: roster rows, police reports and decisions."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Status = Literal["matched", "review", "unmatched"]
EnrolmentStatus = Literal["C", "M", "S"]
# text a roll repeats (the school, common names, a household's address): one copy each
_SHARED_TEXT = ("urn", "given_name", "preferred_name", "family_name", "former_family_name",
                "gender", "address_line1", "postcode", "enrolment_status")
_DATES: dict[date, date] = {}  # a few thousand birth and roll dates, shared by every row


@dataclass(frozen=True, slots=True)
class Pupil:
    """One row of a school roll."""

    urn: str
    upn: str
    given_name: str
    preferred_name: str
    family_name: str
    former_family_name: str
    date_of_birth: date
    gender: str
    address_line1: str
    postcode: str
    enrolment_status: EnrolmentStatus
    on_roll_from: date | None = None
    on_roll_to: date | None = None

    def __post_init__(self) -> None:
        """Share repeated values: a national roll holds millions of rows (bench/match_memory)."""
        for name in _SHARED_TEXT:
            value = getattr(self, name)
            if type(value) is str:
                object.__setattr__(self, name, sys.intern(value))
        for name in ("date_of_birth", "on_roll_from", "on_roll_to"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _DATES.setdefault(value, value))


@dataclass(frozen=True, slots=True)
class ChildReport:
    """A child named in a police incident report."""

    child_ref: str
    given_name: str
    family_name: str
    date_of_birth: date
    gender: str = ""
    address_line1: str = ""
    postcode: str = ""
    upn: str = ""
    school_urn_hint: str = ""
    # the schools in the reporting force's area (its LAs' schools): most of the prior goes to
    # their pupils (services/matcher/domain.py); empty when the area is unknown
    area_urns: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A pupil, the log2-odds (bits) that it is the child, and each field's comparison level."""

    pupil: Pupil
    score: float
    agreements: dict[str, str] = field(hash=False)
    # the weight each field added, in bits, and the prior: the model's explanation
    bits: dict[str, float] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one child: the matched school rows, or candidates for review."""

    status: Status
    matches: tuple[Candidate, ...]
    candidates: tuple[Candidate, ...]
    reason: str
