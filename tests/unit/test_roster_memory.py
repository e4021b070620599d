"""A roster's rows and profiles share one copy of each repeated value; postings still find
every pupil under a key however many share it (bench/match_memory.py measures the gain)."""

from __future__ import annotations

from datetime import date

from services.matcher.blocking import BlockingIndex
from services.matcher.profiles import pupil_profile
from services.matcher.records import Pupil


def fresh(text: str) -> str:
    """An equal string that is another object, as each row read from PostgreSQL is."""
    return "".join(list(text))


def row(upn: str) -> Pupil:
    return Pupil(
        urn=fresh("100001"), upn=upn, given_name=fresh("Amelia"), preferred_name="",
        family_name=fresh("Okonkwo Smith"), former_family_name="",
        date_of_birth=date(2016, 3, 2), gender=fresh("F"), address_line1=fresh("12 Oak Road"),
        postcode=fresh("DY1 2AB"), enrolment_status="C", on_roll_from=date(2020, 9, 1),
    )


def test_rows_share_repeated_text_and_dates() -> None:
    first, second = row("A1"), row("A2")
    assert first.urn == "100001" and first.given_name == "Amelia"
    for name in ("urn", "given_name", "family_name", "gender", "address_line1", "postcode",
                 "date_of_birth", "on_roll_from"):
        assert getattr(first, name) is getattr(second, name), name


def test_profiles_share_name_forms_and_address_parts() -> None:
    first, second = pupil_profile(row("A1")), pupil_profile(row("A2"))
    assert first.family == ("okonkwo", "smith", "okonkwosmith")
    for name in ("given", "family", "postcode", "outward", "house", "street", "dob"):
        assert getattr(first, name) is getattr(second, name), name


def test_a_key_shared_by_one_two_or_many_pupils_finds_them_all() -> None:
    for count in (1, 2, 5):  # a key's postings: one pupil, then two, then appended to
        blocking = BlockingIndex()
        added = [blocking.add(pupil_profile(row(f"A{n}"))) for n in range(count)]
        assert blocking.candidates(pupil_profile(row("B"))) == set(added)
