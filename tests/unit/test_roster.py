"""Unit tests for roster and children CSV parsing and validation."""

from __future__ import annotations

import io
from datetime import date

import pytest
from stdnum.gb import upn as upn_number

from services.matcher.roster import (
    CHILDREN_HEADER,
    ROSTER_HEADER,
    RosterError,
    normalise_uk_postcode,
    parse_children,
    parse_roster,
)

HEADER = ",".join(ROSTER_HEADER)
VALID_UPN = "B801200005001"
GOOD_ROW = {
    "urn": "103456", "upn": VALID_UPN, "given_name": "Amelia", "preferred_name": "Millie",
    "family_name": "Khan", "former_family_name": "", "date_of_birth": "2016-03-02",
    "gender": "F", "address_line1": "12 Oak Road", "postcode": "dy12ab",
    "enrolment_status": "C", "on_roll_from": "2020-09-01", "on_roll_to": "",
}


def roster_csv(*rows: dict[str, str]) -> io.StringIO:
    """Render roster rows under the contract header."""
    lines = [HEADER] + [",".join(row[name] for name in ROSTER_HEADER) for row in rows]
    return io.StringIO("\n".join(lines) + "\n")


def with_field(**changes: str) -> dict[str, str]:
    """Return the good row with some fields changed."""
    return {**GOOD_ROW, **changes}


def test_good_file_parses_and_normalises() -> None:
    second = with_field(upn="", urn="103457", postcode="", gender="", enrolment_status="s",
                        on_roll_to="2027-07-20")
    pupils = parse_roster(roster_csv(GOOD_ROW, second))
    assert len(pupils) == 2
    first = pupils[0]
    assert first.postcode == "DY1 2AB"
    assert first.date_of_birth == date(2016, 3, 2)
    assert first.on_roll_from == date(2020, 9, 1) and first.on_roll_to is None
    assert first.preferred_name == "Millie"
    assert pupils[1].upn == "" and pupils[1].enrolment_status == "S"


def test_byte_order_mark_and_blank_lines_are_tolerated() -> None:
    text = "\ufeff" + roster_csv(GOOD_ROW).getvalue() + "\n\n"
    assert len(parse_roster(io.StringIO(text))) == 1


BAD_FIELDS = [
    ("urn", "12345", "urn: must be a 6-digit URN"),
    ("upn", "A801200005001", "upn: not a valid UPN"),
    ("upn", "B80120000500", "upn: not a valid UPN"),
    ("given_name", "", "given_name: required"),
    ("family_name", "", "family_name: required"),
    ("given_name", "x" * 101, "given_name: longer than 100 characters"),
    ("date_of_birth", "02/03/2016", "date_of_birth: must be a date as YYYY-MM-DD"),
    ("date_of_birth", "2016-02-30", "date_of_birth: must be a date as YYYY-MM-DD"),
    ("gender", "Q", "gender: must be one of"),
    ("postcode", "DY1 2A", "postcode: not a valid UK postcode"),
    ("postcode", "12345", "postcode: not a valid UK postcode"),
    ("enrolment_status", "X", "enrolment_status: must be one of C, M, S"),
    ("on_roll_from", "2020-13-01", "on_roll_from: must be a date as YYYY-MM-DD"),
    ("on_roll_to", "2019-01-01", "on_roll_to: earlier than on_roll_from"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS)
def test_each_bad_field_is_reported_with_its_row(field: str, value: str, message: str) -> None:
    with pytest.raises(RosterError) as caught:
        parse_roster(roster_csv(GOOD_ROW, {**GOOD_ROW, "upn": "", field: value}))
    assert len(caught.value.errors) == 1
    assert caught.value.errors[0].startswith(f"row 3: {message}")


def test_all_errors_are_collected_across_rows() -> None:
    rows = (with_field(gender="Q"), GOOD_ROW | {"urn": "103457"},
            with_field(urn="1", date_of_birth="", upn="A801200005001"))
    with pytest.raises(RosterError) as caught:
        parse_roster(roster_csv(*rows))
    assert caught.value.errors == (
        "row 2: gender: must be one of F, M, U, X",
        "row 4: urn: must be a 6-digit URN",
        "row 4: upn: not a valid UPN (format or check letter)",
        "row 4: date_of_birth: must be a date as YYYY-MM-DD",
    )


def test_errors_never_echo_child_data() -> None:
    bad = with_field(given_name="", family_name="Oyelaran", date_of_birth="2016-31-12",
                     postcode="ZZ99 9ZZZ", upn="Q801200005001")
    with pytest.raises(RosterError) as caught:
        parse_roster(roster_csv(bad))
    text = str(caught.value) + " ".join(caught.value.errors)
    for secret in ("Oyelaran", "2016-31-12", "ZZ99", "Q801200005001", "Khan"):
        assert secret not in text


def test_duplicate_upn_within_a_school_is_rejected() -> None:
    with pytest.raises(RosterError) as caught:
        parse_roster(roster_csv(GOOD_ROW, GOOD_ROW))
    assert caught.value.errors == ("row 3: upn: listed twice for this school (first on row 2)",)


def test_same_upn_at_two_schools_is_dual_registration() -> None:
    dual = with_field(urn="103457", enrolment_status="S")
    assert len(parse_roster(roster_csv(with_field(enrolment_status="M"), dual))) == 2


def test_wrong_header_is_one_error_on_row_one() -> None:
    with pytest.raises(RosterError) as caught:
        parse_roster(io.StringIO("urn,upn,name\n103456,,Amelia\n"))
    assert caught.value.errors == (f"row 1: header must be exactly: {HEADER}",)


def test_empty_file_is_rejected() -> None:
    with pytest.raises(RosterError, match="row 1: file is empty"):
        parse_roster(io.StringIO(""))


def test_short_row_is_reported() -> None:
    stream = io.StringIO(HEADER + "\n103456,,Amelia\n")
    with pytest.raises(RosterError) as caught:
        parse_roster(stream)
    assert caught.value.errors == ("row 2: expected 13 fields, found 3",)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("dy12ab", "DY1 2AB"), ("SW1A 1AA", "SW1A 1AA"), (" m1  1ae ", "M1 1AE"),
     ("EC1A1BB", "EC1A 1BB"), ("W1A 0AX", "W1A 0AX"), ("B33 8TH", "B33 8TH")],
)
def test_postcodes_are_normalised(raw: str, normal: str) -> None:
    assert normalise_uk_postcode(raw) == normal


CHILD_HEADER = ",".join(CHILDREN_HEADER)


def test_children_file_parses_with_optional_fields_empty() -> None:
    text = (f"{CHILD_HEADER}\nc1,Amelia,Khan,2016-03-02,,,,,\n"
            f"c2,Bill,Jones,2015-05-06,M,3 Elm St,b11aa,{VALID_UPN},103456\n")
    children = parse_children(io.StringIO(text))
    assert [child.child_ref for child in children] == ["c1", "c2"]
    assert children[0].upn == "" and children[0].school_urn_hint == ""
    assert children[1].postcode == "B1 1AA" and children[1].school_urn_hint == "103456"


def test_children_file_errors_are_row_numbered() -> None:
    text = (f"{CHILD_HEADER}\n,Amelia,Khan,2016-03-02,,,,,\nc2,Bill,,2015-13-06,,,,,12\n"
            "c3,Ann,Lee,2015-01-01,,,,X801200005001,\nc3,Ann,Lee,2015-01-01,,,,,\n")
    with pytest.raises(RosterError) as caught:
        parse_children(io.StringIO(text))
    assert caught.value.errors == (
        "row 2: child_ref: required",
        "row 3: family_name: required",
        "row 3: date_of_birth: must be a date as YYYY-MM-DD",
        "row 3: school_urn_hint: must be a 6-digit URN",
        "row 4: upn: not a valid UPN (format or check letter)",
        "row 5: child_ref: listed twice (first on row 4)",
    )


def test_generated_upns_are_valid_for_the_fixture() -> None:
    assert upn_number.is_valid(VALID_UPN)


def test_large_roster_streams_quickly() -> None:
    rows = "\n".join(
        f"1{index % 900 + 100:05d},,Pupil,,Family{index % 997},,2015-01-{index % 28 + 1:02d},F,"
        f"{index} Oak Road,DY1 2AB,C,2020-09-01," for index in range(20_000)
    )
    pupils = parse_roster(io.StringIO(f"{HEADER}\n{rows}\n"))
    assert len(pupils) == 20_000
