"""Unit tests for the registry's pure file reading: GIAS rows, encodings, roster problems."""

from __future__ import annotations

import hashlib
import io

import pytest

from services.matcher.registry_files import (
    GIAS_COLUMNS,
    RejectedFile,
    RowProblem,
    decode_csv,
    parse_gias,
    read_roster,
    roster_problems,
)
from services.matcher.roster import ROSTER_HEADER, RosterError

GIAS_HEADER = ["URN", "LA (code)", "EstablishmentName", "TypeOfEstablishment (name)",
               "EstablishmentStatus (name)", "PhaseOfEducation (name)", "StatutoryLowAge",
               "StatutoryHighAge", "Postcode"]
GOOD = {"URN": "103456", "LA (code)": "330", "EstablishmentName": "Oak Road Primary",
        "TypeOfEstablishment (name)": "Community school", "EstablishmentStatus (name)": "Open",
        "PhaseOfEducation (name)": "Primary", "StatutoryLowAge": "4", "StatutoryHighAge": "11",
        "Postcode": "dy1 2ab"}


def gias_csv(*rows: dict[str, str]) -> str:
    """A GIAS-style file with an extra column the importer does not use."""
    def line(values: list[str]) -> str:
        return ",".join(f'"{v}"' for v in values)
    return "\n".join([line(GIAS_HEADER), *(line([r[c] for c in GIAS_HEADER]) for r in rows)])


def test_good_rows_parse_with_extra_columns_ignored() -> None:
    closed = GOOD | {"URN": "103457", "EstablishmentStatus (name)": "Closed",
                     "StatutoryLowAge": "", "StatutoryHighAge": "", "Postcode": ""}
    first, second = parse_gias(gias_csv(GOOD, closed))
    assert (first.urn, first.la_code, first.status, first.postcode) == (
        "103456", "330", "open", "DY1 2AB")
    assert (first.low_age, first.high_age, first.phase) == (4, 11, "Primary")
    assert second.status == "closed" and second.postcode is None and second.low_age is None


def test_proposed_to_close_is_still_open() -> None:
    row = GOOD | {"EstablishmentStatus (name)": "Open, but proposed to close"}
    assert parse_gias(gias_csv(row))[0].status == "open"


@pytest.mark.parametrize(("column", "value", "message"), [
    ("URN", "12345", "must be a 6- or 7-digit URN"),
    ("EstablishmentName", "", "required, at most 200 characters"),
    ("LA (code)", "", "must be 1-8 letters or digits"),
    ("EstablishmentStatus (name)", "", "required"),
    ("Postcode", "NOT A POSTCODE", "not a valid UK postcode"),
    ("StatutoryLowAge", "four", "must be a whole number of years up to 25"),
])
def test_bad_field_is_named_by_its_column(column: str, value: str, message: str) -> None:
    with pytest.raises(RejectedFile) as caught:
        parse_gias(gias_csv(GOOD | {column: value}))
    assert caught.value.problems == (RowProblem(2, column, message),)


def test_every_bad_row_is_reported_with_its_number() -> None:
    rows = [GOOD, GOOD | {"URN": "103458", "StatutoryLowAge": "11", "StatutoryHighAge": "4"},
            GOOD]
    with pytest.raises(RejectedFile) as caught:
        parse_gias(gias_csv(*rows))
    assert [(p.row, p.field) for p in caught.value.problems] == [
        (3, "StatutoryHighAge"), (4, GIAS_COLUMNS["urn"])]
    assert "listed twice (first on row 2)" in caught.value.problems[1].message


def test_missing_columns_are_listed() -> None:
    with pytest.raises(RejectedFile) as caught:
        parse_gias("URN,EstablishmentName\n103456,Oak\n")
    assert caught.value.problems[0].row == 1
    assert "LA (code)" in caught.value.problems[0].message


def test_short_row_is_refused() -> None:
    with pytest.raises(RejectedFile) as caught:
        parse_gias(gias_csv(GOOD) + '\n"103457","330"\n')
    assert caught.value.problems[0].message == f"expected {len(GIAS_HEADER)} fields, found 2"


def test_utf8_with_bom_and_cp1252_both_decode() -> None:
    text = "URN,EstablishmentName\n1,St Mary\u2019s C of E Sch\u00f4ol\n"
    assert decode_csv(b"\xef\xbb\xbf" + text.encode("utf-8")) == text
    assert decode_csv(text.encode("cp1252")) == text
    assert decode_csv(b"a\x81b") == "a\x81b"  # unassigned in cp1252: latin-1 keeps it


def test_roster_problem_strings_split_into_row_field_message() -> None:
    error = RosterError(["row 3: date_of_birth: must be a date as YYYY-MM-DD",
                         "row 4: expected 13 fields, found 2",
                         "row 1: header must be exactly: a,b"])
    assert roster_problems(error) == [
        RowProblem(3, "date_of_birth", "must be a date as YYYY-MM-DD"),
        RowProblem(4, None, "expected 13 fields, found 2"),
        RowProblem(1, None, "header must be exactly: a,b"),
    ]
    assert RowProblem(4, None, "x").line() == "row 4: x"
    assert RowProblem(4, "upn", "x").line() == "row 4: upn: x"


ROW = ["103456", "", "Amelia", "", "Khan", "", "2016-03-02", "F", "", "", "C", "", ""]


def roster_bytes(*urns: str, blank_after_first: bool = False) -> bytes:
    lines = [",".join(ROSTER_HEADER)]
    for i, urn in enumerate(urns):
        lines.append(",".join([urn, *ROW[1:]]))
        if blank_after_first and i == 0:
            lines.append("")
    return ("\n".join(lines) + "\n").encode()


def test_read_roster_hashes_the_bytes() -> None:
    data = roster_bytes("103456", "103456")
    parsed = read_roster(io.BytesIO(data), urn="103456")
    assert len(parsed.pupils) == 2
    assert parsed.sha256 == hashlib.sha256(data).hexdigest()


def test_rows_for_another_school_are_numbered_past_blank_lines() -> None:
    data = roster_bytes("103456", "103456", "999999", blank_after_first=True)
    with pytest.raises(RejectedFile) as caught:
        read_roster(io.BytesIO(data), urn="103456")
    assert caught.value.problems == (
        RowProblem(5, "urn", "must be 103456, the school this roll is for"),)


def test_bad_urn_is_reported_once_and_merged_in_row_order() -> None:
    data = roster_bytes("103456", "12345", "999999")
    with pytest.raises(RejectedFile) as caught:
        read_roster(io.BytesIO(data), urn="103456")
    assert [(p.row, p.field) for p in caught.value.problems] == [(3, "urn"), (4, "urn")]
    assert caught.value.problems[0].message == "must be a 6-digit URN"


def test_non_utf8_roster_names_the_line() -> None:
    data = roster_bytes("103456") + "103456,,Zo\u00eb,,Khan,,2016-03-02,F,,,C,,\n".encode(
        "latin-1")
    with pytest.raises(RejectedFile) as caught:
        read_roster(io.BytesIO(data), urn=None)
    assert caught.value.problems == (RowProblem(3, None, "not UTF-8 text"),)
