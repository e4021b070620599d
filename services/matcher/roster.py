"""Parse and validate roster and children CSV files into matcher records."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from datetime import date
from functools import lru_cache
from typing import TextIO, TypeVar, cast

from stdnum.gb import upn as upn_number

from services.matcher.records import ChildReport, EnrolmentStatus, Pupil

ROSTER_HEADER = (
    "urn", "upn", "given_name", "preferred_name", "family_name", "former_family_name",
    "date_of_birth", "gender", "address_line1", "postcode", "enrolment_status",
    "on_roll_from", "on_roll_to",
)
CHILDREN_HEADER = (
    "child_ref", "given_name", "family_name", "date_of_birth", "gender", "address_line1",
    "postcode", "upn", "school_urn_hint",
)
GENDERS = frozenset({"", "M", "F", "U", "X"})
ENROLMENT_STATUSES = frozenset({"C", "M", "S"})
MAX_TEXT = 100

_URN = re.compile(r"\d{6}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_POSTCODE = re.compile(
    r"(GIR0AA|[A-PR-UWYZ](?:\d[A-HJKPSTUW\d]?|[A-HK-Y]\d[ABEHMNPRVWXY\d]?)\d[ABD-HJLNP-UW-Z]{2})"
)

Record = TypeVar("Record")


class RosterError(ValueError):
    """A CSV file was rejected; ``errors`` holds every row-numbered problem."""

    def __init__(self, errors: list[str]) -> None:
        shown = "; ".join(errors[:3]) + ("; ..." if len(errors) > 3 else "")
        super().__init__(f"{len(errors)} problem(s): {shown}")
        self.errors = tuple(errors)


@lru_cache(maxsize=65_536)
def parse_iso_date(text: str) -> date:
    """Parse a YYYY-MM-DD date."""
    if not _ISO_DATE.fullmatch(text):
        raise ValueError("not a YYYY-MM-DD date")
    return date.fromisoformat(text)


@lru_cache(maxsize=262_144)
def normalise_uk_postcode(text: str) -> str:
    """Return a UK postcode upper-cased with one space before the inward code."""
    compact = "".join(text.split()).upper()
    if not _POSTCODE.fullmatch(compact):
        raise ValueError("not a valid UK postcode")
    return f"{compact[:-3]} {compact[-3:]}"


class _Row:
    """Field readers over one CSV row that collect problems instead of stopping at the first."""

    __slots__ = ("problems", "values")

    def __init__(self, header: tuple[str, ...], values: list[str]) -> None:
        self.values = dict(zip(header, (value.strip() for value in values), strict=True))
        self.problems: list[str] = []

    def text(self, name: str, *, required: bool = False) -> str:
        """Read a free-text field of at most MAX_TEXT characters."""
        value = self.values[name]
        if required and not value:
            self.problems.append(f"{name}: required")
        elif len(value) > MAX_TEXT:
            self.problems.append(f"{name}: longer than {MAX_TEXT} characters")
        elif "\x00" in value:  # PostgreSQL text cannot hold it
            self.problems.append(f"{name}: contains a NUL character")
        return value

    def iso_date(self, name: str) -> date:
        """Read a required YYYY-MM-DD date (date.min stands in when it is bad)."""
        try:
            return parse_iso_date(self.values[name])
        except ValueError:
            self.problems.append(f"{name}: must be a date as YYYY-MM-DD")
            return date.min

    def optional_iso_date(self, name: str) -> date | None:
        """Read an optional YYYY-MM-DD date."""
        return self.iso_date(name) if self.values[name] else None

    def upn(self) -> str:
        """Read an optional UPN, which must have a valid format and check letter."""
        value = self.values["upn"].replace(" ", "").upper()
        if value and not upn_number.is_valid(value):
            self.problems.append("upn: not a valid UPN (format or check letter)")
        return value

    def postcode(self) -> str:
        """Read an optional UK postcode, normalised."""
        try:
            return normalise_uk_postcode(self.values["postcode"]) if self.values["postcode"] else ""
        except ValueError:
            self.problems.append("postcode: not a valid UK postcode")
            return ""

    def choice(self, name: str, allowed: frozenset[str]) -> str:
        """Read a coded field, case-insensitively."""
        value = self.values[name].upper()
        if value not in allowed:
            codes = ", ".join(sorted(allowed - {""}))
            self.problems.append(f"{name}: must be one of {codes}")
        return value

    def urn(self, name: str, *, required: bool) -> str:
        """Read a school URN (six digits)."""
        value = self.values[name]
        if (value or required) and not _URN.fullmatch(value):
            self.problems.append(f"{name}: must be a 6-digit URN")
        return value


def _pupil(row: _Row) -> Pupil:
    """Build a roster record from a row, recording problems on the row."""
    pupil = Pupil(
        urn=row.urn("urn", required=True), upn=row.upn(),
        given_name=row.text("given_name", required=True),
        preferred_name=row.text("preferred_name"),
        family_name=row.text("family_name", required=True),
        former_family_name=row.text("former_family_name"),
        date_of_birth=row.iso_date("date_of_birth"), gender=row.choice("gender", GENDERS),
        address_line1=row.text("address_line1"), postcode=row.postcode(),
        enrolment_status=cast(EnrolmentStatus, row.choice("enrolment_status", ENROLMENT_STATUSES)),
        on_roll_from=row.optional_iso_date("on_roll_from"),
        on_roll_to=row.optional_iso_date("on_roll_to"),
    )
    starts, ends = pupil.on_roll_from, pupil.on_roll_to
    if starts is not None and ends is not None and ends < starts:
        row.problems.append("on_roll_to: earlier than on_roll_from")
    return pupil


def pupil_from_fields(values: dict[str, str]) -> tuple[Pupil, list[str]]:
    """A roster record from named fields (every ROSTER_HEADER name; "" when absent) and the
    problems found, by the CSV import's own rules (the CTF reader's way in)."""
    row = _Row(ROSTER_HEADER, [values.get(name, "") for name in ROSTER_HEADER])
    return _pupil(row), row.problems


def _child(row: _Row) -> ChildReport:
    """Build a children-file record from a row, recording problems on the row."""
    return ChildReport(
        child_ref=row.text("child_ref", required=True),
        given_name=row.text("given_name", required=True),
        family_name=row.text("family_name", required=True),
        date_of_birth=row.iso_date("date_of_birth"), gender=row.choice("gender", GENDERS),
        address_line1=row.text("address_line1"), postcode=row.postcode(), upn=row.upn(),
        school_urn_hint=row.urn("school_urn_hint", required=False),
    )


def _rows(stream: TextIO, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, fields) after checking the header; the header is row 1."""
    reader = csv.reader(stream)
    first = next(reader, None)
    if first is None:
        raise RosterError(["row 1: file is empty; expected a header"])
    if tuple(name.strip().lstrip("\ufeff") for name in first) != header:
        raise RosterError([f"row 1: header must be exactly: {','.join(header)}"])
    for number, fields in enumerate(reader, start=2):
        if fields:
            yield number, fields


def _parse(
    stream: TextIO,
    header: tuple[str, ...],
    build: Callable[[_Row], Record],
    unique: Callable[[Record], tuple[str, ...] | None],
    duplicate: str,
) -> list[Record]:
    """Parse every row, collecting all row-numbered problems before failing."""
    records: list[Record] = []
    errors: list[str] = []
    seen: dict[tuple[str, ...], int] = {}
    for number, fields in _rows(stream, header):
        if len(fields) != len(header):
            errors.append(f"row {number}: expected {len(header)} fields, found {len(fields)}")
            continue
        row = _Row(header, fields)
        record = build(row)
        key = unique(record)
        if key is not None and seen.setdefault(key, number) != number:
            row.problems.append(f"{duplicate} (first on row {seen[key]})")
        errors.extend(f"row {number}: {problem}" for problem in row.problems)
        records.append(record)
    if errors:
        raise RosterError(errors)
    return records


def _pupil_key(pupil: Pupil) -> tuple[str, ...] | None:
    """Return the (school, UPN) pair that must be unique within a roster."""
    return (pupil.urn, pupil.upn) if pupil.upn else None


def parse_roster(stream: TextIO) -> list[Pupil]:
    """Parse a roster CSV; raise RosterError listing every bad row."""
    return _parse(stream, ROSTER_HEADER, _pupil, _pupil_key, "upn: listed twice for this school")


def parse_children(stream: TextIO) -> list[ChildReport]:
    """Parse a CHILDREN.csv; raise RosterError listing every bad row."""
    return _parse(
        stream, CHILDREN_HEADER, _child, lambda child: (child.child_ref,),
        "child_ref: listed twice",
    )
