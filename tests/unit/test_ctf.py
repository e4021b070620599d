"""Reading a school MIS's Common Transfer File as its roll (services/matcher/ctf.py)."""

from __future__ import annotations

import io
from datetime import date

import pytest

from services.matcher.ctf import looks_like_xml, read_ctf
from services.matcher.index import build_index
from services.matcher.records import ChildReport
from services.matcher.registry_files import RejectedFile
from tests.support.registry_files import ctf_file

URN, PRU = "103456", "139001"
NAMES = ("Amelia", "Khan", "Oliver", "Smith", "Ollie", "Jack", "Brown", "Zainab", "Hussain",
         "Zofia", "Nowak", "2016", "DY1")


def roll(name: str = "oak-road-primary", urn: str | None = URN):
    return read_ctf(io.BytesIO(ctf_file(name, urn=URN, pru_urn=PRU)), urn=urn)


def refusal(data: bytes, urn: str | None = URN) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(RejectedFile) as caught:
        read_ctf(io.BytesIO(data), urn=urn)
    return [(p.row, p.field, p.message) for p in caught.value.problems]


def test_every_pupil_on_roll_is_read_and_a_guest_is_skipped() -> None:
    got = roll()
    assert (got.urn, got.version, got.skipped) == (URN, "24.0", 1)
    by_name = {p.given_name: p for p in got.roster.pupils}
    assert sorted(by_name) == ["Amelia", "Jack", "Oliver", "Zainab"]
    amelia = by_name["Amelia"]
    assert (amelia.upn, amelia.family_name, amelia.date_of_birth, amelia.gender) == (
        "J332200116001", "Khan", date(2016, 3, 2), "F")
    assert (amelia.address_line1, amelia.postcode, amelia.enrolment_status) == (
        "12 Oak Road", "DY1 2AB", "C")
    assert amelia.on_roll_from == date(2020, 9, 2) and amelia.on_roll_to is None


def test_former_and_preferred_names_and_dual_registration() -> None:
    oliver = next(p for p in roll().roster.pupils if p.given_name == "Oliver")
    assert (oliver.preferred_name, oliver.former_family_name) == ("Ollie", "Smith")
    assert oliver.enrolment_status == "M"
    assert oliver.address_line1 == "Flat 3, Elm Court, Castle Street"
    # the school history's entry for this school, not the unit he also attends
    assert oliver.on_roll_from == date(2021, 1, 11)
    zainab = next(p for p in roll().roster.pupils if p.given_name == "Zainab")
    # CTF 20's Gender element, an address as lines, a preferred surname kept as the other one
    assert (zainab.gender, zainab.former_family_name) == ("F", "Hussain")
    assert (zainab.address_line1, zainab.postcode) == ("41 Wellington Road", "DY1 1RB")
    unit = roll("riverside-learning-centre", urn=PRU)
    assert [(p.urn, p.upn, p.enrolment_status) for p in unit.roster.pupils] == [
        (PRU, oliver.upn, "S")]


def test_a_leaver_carries_the_day_they_left() -> None:
    jack = next(p for p in roll().roster.pupils if p.given_name == "Jack")
    assert (jack.on_roll_from, jack.on_roll_to) == (date(2019, 9, 3), date(2026, 7, 22))


def test_the_matcher_finds_the_pupils_of_both_files() -> None:
    pupils = roll().roster.pupils + roll("riverside-learning-centre", urn=PRU).roster.pupils
    index = build_index(pupils, frozenset({URN, PRU}))
    ollie = ChildReport("c1", "Ollie", "Smith", date(2016, 7, 19), postcode="DY1 4QT")
    decision = index.match(ollie, on_date=date(2026, 12, 1))
    assert decision.status == "matched"
    assert sorted(c.pupil.urn for c in decision.matches) == sorted([URN, PRU])
    zainab = ChildReport("c2", "Zainab", "Hussain", date(2016, 11, 8), postcode="DY1 1RB")
    assert [c.pupil.urn for c in index.match(zainab, on_date=date(2026, 12, 1)).matches] == [URN]
    jack = ChildReport("c3", "Jack", "Brown", date(2015, 1, 30), postcode="DY1 3EE")
    assert index.match(jack, on_date=date(2026, 7, 1)).status == "matched"
    assert index.match(jack, on_date=date(2026, 12, 1)).status != "matched"


def test_the_file_must_be_the_roll_of_the_school_it_is_sent_to() -> None:
    data = ctf_file("oak-road-primary", urn=URN)
    assert refusal(data, urn="100001") == [
        (None, None, f"the file is the roll of school {URN}, not 100001")]
    assert roll(urn=None).urn == URN  # the CLI: the school the file says
    nameless = data.replace(f"<URN>{URN}</URN>".encode(), b"")
    assert refusal(nameless, urn=None)[0][2].startswith("Header/SourceSchool/URN is missing")
    assert read_ctf(io.BytesIO(nameless), urn=URN).urn == URN


def test_bad_pupils_are_numbered_by_element_without_their_values() -> None:
    data = ctf_file("oak-road-primary", urn=URN)
    data = data.replace(b"<DOB>2016-03-02</DOB>", b"<DOB>02/03/2016</DOB>")
    data = data.replace(b"<PostCode>DY1 4QT</PostCode>", b"<PostCode>NOT A CODE</PostCode>")
    data = data.replace(b"<UPN>Q332200116005</UPN>", b"<UPN>J332200116001</UPN>")
    data = data.replace(b"<Forename>Jack</Forename>", b"<Forename></Forename>")
    problems = refusal(data)
    assert problems == [
        (1, "DOB", "must be a date as YYYY-MM-DD (xs:date)"),
        (2, "Address/PostCode", "not a valid UK postcode"),
        (3, "Forename", "required"),
        (5, "UPN", "listed twice (first as pupil 1)"),
    ]
    shown = " ".join(m for _, _, m in problems)
    assert not [n for n in NAMES if n in shown]


@pytest.mark.parametrize(("data", "message"), [
    (b"<?xml version='1.0'?><!DOCTYPE CTfile [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]>"
     b"<CTfile><Header/>&b;</CTfile>", "DTDs, entities and external references are refused"),
    (b"<?xml version='1.0'?><!DOCTYPE CTfile SYSTEM 'file:///etc/passwd'><CTfile/>",
     "DTDs, entities and external references are refused"),
    (b"<CTfile><Header><CTFversion>24.0</CTFversion></Header>", "not well-formed XML (line 1, "
     "column 54)"),
    (b"<roster><Header/></roster>", "not a Common Transfer File (no CTfile/Header)"),
    (b"<CTfile><Header><CTFversion>17.0</CTFversion></Header></CTfile>",
     "CTF version 17.0 is not read; version 18.0 or later is"),
    (b"<CTfile><Header/></CTfile>", "CTF version missing is not read; version 18.0 or later is"),
])
def test_hostile_or_foreign_files_are_refused_whole(data: bytes, message: str) -> None:
    assert refusal(data) == [(None, None, message)]


def test_xml_is_told_from_csv_by_its_first_bytes() -> None:
    assert looks_like_xml(b"\xef\xbb\xbf  <?xml version='1.0'?>")
    assert looks_like_xml(b"\n<CTfile>")
    assert not looks_like_xml(b"urn,upn,given_name")
