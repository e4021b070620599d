"""Pure reading of the registry's CSV files: encodings, GIAS establishments, row problems."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, TextIO

from services.matcher.records import Pupil
from services.matcher.roster import RosterError, normalise_uk_postcode, parse_roster

GIAS_COLUMNS = {
    "urn": "URN", "name": "EstablishmentName", "la_code": "LA (code)",
    "status": "EstablishmentStatus (name)", "postcode": "Postcode",
    "low_age": "StatutoryLowAge", "high_age": "StatutoryHighAge",
    "phase": "PhaseOfEducation (name)",
}
SCHOOL_URN = re.compile(r"\d{6,7}")
LA_CODE = re.compile(r"[A-Z0-9]{1,8}")
MAX_NAME = 200
MAX_PHASE = 64
MAX_AGE = 25

_ROSTER_PROBLEM = re.compile(r"row (\d+): (?:([a-z_]+): )?(.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one row (None: the whole file) was refused; never the row's values."""

    row: int | None
    field: str | None
    message: str
    unit: str = "row"  # what `row` counts: a CSV's rows, or a CTF's pupils ("pupil")

    def as_dict(self) -> dict[str, Any]:
        """The problem+json `errors` entry."""
        return {"row": self.row, "field": self.field, "message": self.message}

    def line(self) -> str:
        """One line for a terminal."""
        where = f"{self.unit} {self.row}" if self.row is not None else "file"
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


class RejectedFile(ValueError):
    """A CSV file was refused as a whole; `problems` lists every reason."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class Establishment:
    """One school from a GIAS establishments file."""

    urn: str
    name: str
    la_code: str
    status: Literal["open", "closed"]
    postcode: str | None
    low_age: int | None
    high_age: int | None
    phase: str | None


def roster_problems(error: RosterError) -> list[RowProblem]:
    """Split roster.py's `row N: field: message` strings into structured problems."""
    out = []
    for text in error.errors:
        found = _ROSTER_PROBLEM.fullmatch(text)
        if found is None:
            out.append(RowProblem(None, None, text))
        else:
            out.append(RowProblem(int(found[1]), found[2], found[3]))
    return out


def roster_urn_rows(stream: TextIO) -> Iterator[tuple[int, str]]:
    """(row number, urn column) of each data row, numbered as roster.py numbers them."""
    reader = csv.reader(stream)
    next(reader, None)
    for number, fields in enumerate(reader, start=2):
        if fields:
            yield number, fields[0].strip()


def first_undecodable_line(stream: BinaryIO) -> int | None:
    """The first line that is not UTF-8, for a row-numbered encoding error."""
    for number, line in enumerate(stream, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return None


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without a byte order mark), else Windows-1252 as GIAS exports it."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        # five bytes are unassigned in cp1252; latin-1 maps every byte
        return data.decode("latin-1")


def parse_gias(text: str) -> list[Establishment]:
    """Parse a GIAS establishments CSV (extra columns ignored); raise RejectedFile on bad rows."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lstrip("\ufeff") for name in next(reader, [])]
    missing = [column for column in GIAS_COLUMNS.values() if column not in header]
    if missing:
        raise RejectedFile([RowProblem(1, None, f"missing column(s): {', '.join(missing)}")])
    where = {key: header.index(column) for key, column in GIAS_COLUMNS.items()}
    found: list[Establishment] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for number, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(header):
            problems.append(RowProblem(number, None, f"expected {len(header)} fields, "
                                                     f"found {len(fields)}"))
            continue
        row = _GiasRow(number, {key: fields[i].strip() for key, i in where.items()})
        establishment = row.establishment()
        if SCHOOL_URN.fullmatch(establishment.urn):
            first = seen.setdefault(establishment.urn, number)
            if first != number:
                row.problem("urn", f"listed twice (first on row {first})")
        problems.extend(row.problems)
        found.append(establishment)
    if problems:
        raise RejectedFile(problems)
    return found


class _GiasRow:
    """Field readers over one GIAS row that collect problems instead of stopping."""

    def __init__(self, number: int, values: dict[str, str]) -> None:
        self.number = number
        self.values = values
        self.problems: list[RowProblem] = []

    def problem(self, key: str, message: str) -> None:
        """Record a problem against a column, named as the file names it."""
        self.problems.append(RowProblem(self.number, GIAS_COLUMNS[key], message))

    def establishment(self) -> Establishment:
        """Build the establishment, recording problems."""
        v = self.values
        for key in (k for k, value in v.items() if "\x00" in value):
            self.problem(key, "contains a NUL character")
        if not SCHOOL_URN.fullmatch(v["urn"]):
            self.problem("urn", "must be a 6- or 7-digit URN")
        if not v["name"] or len(v["name"]) > MAX_NAME:
            self.problem("name", f"required, at most {MAX_NAME} characters")
        la_code = v["la_code"].upper()
        if not LA_CODE.fullmatch(la_code):
            self.problem("la_code", "must be 1-8 letters or digits")
        if not v["status"]:
            self.problem("status", "required")
        if len(v["phase"]) > MAX_PHASE:
            self.problem("phase", f"longer than {MAX_PHASE} characters")
        low, high = self.age("low_age"), self.age("high_age")
        if low is not None and high is not None and high < low:
            self.problem("high_age", "lower than StatutoryLowAge")
        return Establishment(
            urn=v["urn"], name=v["name"], la_code=la_code,
            status="closed" if v["status"].casefold() == "closed" else "open",
            postcode=self.postcode(), low_age=low, high_age=high, phase=v["phase"] or None,
        )

    def age(self, key: str) -> int | None:
        """An optional age in whole years."""
        value = self.values[key]
        if not value:
            return None
        if not value.isdigit() or int(value) > MAX_AGE:
            self.problem(key, f"must be a whole number of years up to {MAX_AGE}")
            return None
        return int(value)

    def postcode(self) -> str | None:
        """An optional UK postcode, normalised."""
        value = self.values["postcode"]
        if not value:
            return None
        try:
            return normalise_uk_postcode(value)
        except ValueError:
            self.problem("postcode", "not a valid UK postcode")
            return None


@dataclass(frozen=True, slots=True)
class RosterFile:
    """A valid roster file: its pupils in file order and the SHA-256 of its bytes."""

    pupils: list[Pupil]
    sha256: str


class _Digesting(io.RawIOBase):
    """Reads through to a binary stream, hashing every byte that passes."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.digest.update(data)
        return len(data)


def read_roster(raw: BinaryIO, *, urn: str | None) -> RosterFile:
    """Parse a roster stream with roster.py; with `urn`, every row must be for that school."""
    digesting = _Digesting(raw)
    text = io.TextIOWrapper(
        io.BufferedReader(digesting, 1 << 20), encoding="utf-8-sig", newline=""
    )
    problems: list[RowProblem] = []
    pupils: list[Pupil] = []
    try:
        pupils = parse_roster(text)
    except RosterError as error:
        problems = roster_problems(error)
    except UnicodeDecodeError:
        raw.seek(0)
        problem = RowProblem(first_undecodable_line(raw), None, "not UTF-8 text")
        raise RejectedFile([problem]) from None
    if urn is not None and (problems or any(pupil.urn != urn for pupil in pupils)):
        problems = _with_urn_mismatches(raw, urn, problems)
    if problems:
        raise RejectedFile(problems)
    return RosterFile(pupils, digesting.digest.hexdigest())


def _text(raw: BinaryIO) -> io.TextIOWrapper:
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def _with_urn_mismatches(
    raw: BinaryIO, urn: str, problems: list[RowProblem]
) -> list[RowProblem]:
    """Add a problem for each row naming another school (a second, error-path-only pass)."""
    flagged = {p.row for p in problems if p.field == "urn"}
    text = _text(raw)
    try:
        extra = [
            RowProblem(number, "urn", f"must be {urn}, the school this roll is for")
            for number, value in roster_urn_rows(text)
            if value != urn and number not in flagged
        ]
    finally:
        text.detach()
    return sorted([*problems, *extra], key=lambda p: p.row or 0)


def unknown_urn_rows(raw: BinaryIO, unknown: set[str]) -> list[RowProblem]:
    """One problem per unknown school, on the first row that names it."""
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    text = _text(raw)
    try:
        for number, value in roster_urn_rows(text):
            if value in unknown:
                first.setdefault(value, number)
                counts[value] = counts.get(value, 0) + 1
    finally:
        text.detach()
    return sorted(
        (RowProblem(row, "urn", f"no school with this URN ({counts[urn]} row(s))")
         for urn, row in first.items()),
        key=lambda p: p.row or 0,
    )
