"""Unit tests for the pure matching engine: a table of hard cases, then the batch runner."""

from __future__ import annotations

import gc
import io
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from stdnum.gb import upn as upn_number

from services.matcher.batch import (
    RESULTS_HEADER,
    main_match,
    match_children,
    run_batch,
    write_results,
)
from services.matcher.dates import nearby_dobs, swapped_dob
from services.matcher.domain import ChildReport, Decision, Pupil, RosterIndex, Thresholds
from services.matcher.names import are_nicknames, fold_text, name_forms

ON_DATE = date(2026, 11, 23)
OAK, ELM, LEA, CLOSED, HILL = "100001", "100002", "100003", "100004", "100005"
OPEN_URNS = {OAK, ELM, LEA, HILL}


def make_upn(serial: int) -> str:
    """Return a valid UPN for a serial number."""
    body = f"801{serial:09d}"
    return upn_number.calc_check_digit(body) + body


def pupil(
    urn: str, given: str, family: str, born: date, gender: str, line1: str, postcode: str,
    **extra: object,
) -> Pupil:
    """Build a roster row with sensible defaults."""
    row = Pupil(
        urn=urn, upn="", given_name=given, preferred_name="", family_name=family,
        former_family_name="", date_of_birth=born, gender=gender, address_line1=line1,
        postcode=postcode, enrolment_status="C", on_roll_from=date(2020, 9, 1), on_roll_to=None,
    )
    return replace(row, **extra)  # type: ignore[arg-type]


KHAN_HOME = ("12 Oak Road", "DY1 2AB")
ROSTER = [
    pupil(OAK, "Amelia", "Khan", date(2016, 3, 2), "F", *KHAN_HOME, upn=make_upn(1)),
    pupil(OAK, "Aisha", "Khan", date(2016, 3, 2), "F", *KHAN_HOME, upn=make_upn(2)),
    pupil(OAK, "Yusuf", "Khan", date(2013, 7, 15), "M", *KHAN_HOME),
    pupil(ELM, "William", "Jones", date(2015, 5, 6), "M", "3 Elm Street", "B1 1AA"),
    pupil(ELM, "Zoë", "Lewis", date(2017, 9, 10), "F", "7 Mill Lane", "WS1 3CD"),
    pupil(ELM, "Ruby", "Smith-Jones", date(2014, 11, 20), "F", "9 Park Road", "CV1 2EF"),
    pupil(LEA, "Jack", "Taylor", date(2012, 2, 14), "M", "1 High Street", "LE1 4GH",
          former_family_name="Evans"),
    pupil(OAK, "Oscar", "Brown", date(2014, 8, 8), "M", "4 Old Lane", "DY3 1AB",
          on_roll_to=date(2026, 10, 1)),
    pupil(LEA, "Oscar", "Brown", date(2014, 8, 8), "M", "5 New Road", "LE2 1AB",
          on_roll_from=date(2026, 10, 10)),
    pupil(ELM, "Freya", "Wilson", date(2015, 1, 25), "F", "6 Birch Way", "B2 4CD",
          upn=make_upn(3), enrolment_status="M"),
    pupil(LEA, "Freya", "Wilson", date(2015, 1, 25), "F", "6 Birch Way", "B2 4CD",
          upn=make_upn(3), enrolment_status="S"),
    pupil(CLOSED, "Leo", "Martin", date(2016, 6, 6), "M", "2 Kings Road", "WV1 1AA"),
    pupil(HILL, "Isla", "Wright", date(2013, 4, 4), "F", "3 Queens Road", "M2 5BB",
          on_roll_to=date(2026, 7, 20)),
    pupil(OAK, "Olivia", "Brown", date(2015, 10, 10), "F", "2 Ash Close", "DY2 7AA"),
    pupil(HILL, "Olivia", "Brown", date(2015, 10, 10), "F", "8 Elm Road", "M1 1AA"),
    pupil(HILL, "Elizabeth", "Green", date(2016, 12, 1), "F", "4 Grove Lane", "M3 3CC",
          preferred_name="Libby"),
    pupil(LEA, "Harry", "O'Brien", date(2011, 1, 30), "M", "10 Castle Street", "LE3 9ZZ"),
]
INDEX = RosterIndex(ROSTER, open_urns=OPEN_URNS)


def report(given: str, family: str, born: date, **extra: str) -> ChildReport:
    """Build a police report."""
    return ChildReport("ref-1", given, family, born, **extra)


def decide(child: ChildReport, index: RosterIndex = INDEX) -> Decision:
    """Match as at the incident date."""
    return index.match(child, on_date=ON_DATE)


def matched_urns(decision: Decision) -> set[str]:
    """Return the schools a decision matched."""
    return {candidate.pupil.urn for candidate in decision.matches}


KHAN = {"gender": "F", "address_line1": KHAN_HOME[0], "postcode": KHAN_HOME[1]}
CASES = [
    ("exact", report("Amelia", "Khan", date(2016, 3, 2), **KHAN), "matched", {OAK}),
    ("exact with UPN", report("Amelia", "Khan", date(2016, 3, 2), upn=make_upn(1)),
     "matched", {OAK}),
    ("missing UPN, no address", report("William", "Jones", date(2015, 5, 6)), "matched", {ELM}),
    ("typo in surname", report("William", "Jnoes", date(2015, 5, 6), postcode="B1 1AA"),
     "matched", {ELM}),
    ("typo in given name", report("Wiliam", "Jones", date(2015, 5, 6), postcode="B1 1AA"),
     "matched", {ELM}),
    ("nickname Bill", report("Bill", "Jones", date(2015, 5, 6), postcode="B1 1AA"),
     "matched", {ELM}),
    ("preferred name", report("Libby", "Green", date(2016, 12, 1)), "matched", {HILL}),
    ("day/month swap", report("William", "Jones", date(2015, 6, 5), postcode="B1 1AA"),
     "matched", {ELM}),
    ("one-digit DOB slip", report("William", "Jones", date(2015, 5, 8), postcode="B1 1AA"),
     "matched", {ELM}),
    ("given/family transposed", report("Lewis", "Zoe", date(2017, 9, 10), postcode="WS1 3CD"),
     "matched", {ELM}),
    ("hyphenated surname, one part", report("Ruby", "Jones", date(2014, 11, 20),
     postcode="CV1 2EF"), "matched", {ELM}),
    ("double surname, spaced", report("Ruby", "Smith Jones", date(2014, 11, 20)),
     "matched", {ELM}),
    ("former surname", report("Jack", "Evans", date(2012, 2, 14), postcode="LE1 4GH"),
     "matched", {LEA}),
    ("ASCII folding Zoë/Zoe", report("Zoe", "Lewis", date(2017, 9, 10)), "matched", {ELM}),
    ("apostrophe dropped", report("Harry", "OBrien", date(2011, 1, 30)), "matched", {LEA}),
    ("twin is not swapped", report("Aisha", "Khan", date(2016, 3, 2), **KHAN), "matched",
     {OAK}),
    ("sibling with own DOB", report("Yusuf", "Khan", date(2013, 7, 15), **KHAN), "matched",
     {OAK}),
    # a brother or sister shares the family name and the address, so those say next to
    # nothing once the household agrees: another given name and birth date is another child
    ("unknown sibling is not matched to a sibling",
     report("Zain", "Khan", date(2019, 1, 1), **KHAN), "unmatched", set()),
    ("mover matched at new school only", report("Oscar", "Brown", date(2014, 8, 8)),
     "matched", {LEA}),
    ("dual registration: both schools", report("Freya", "Wilson", date(2015, 1, 25)),
     "matched", {ELM, LEA}),
    ("closed school never matches", report("Leo", "Martin", date(2016, 6, 6)), "unmatched",
     set()),
    ("left the roll", report("Isla", "Wright", date(2013, 4, 4)), "unmatched", set()),
    ("two near-identical pupils", report("Olivia", "Brown", date(2015, 10, 10)), "review",
     set()),
    ("hint cannot split near-identical pupils",
     report("Olivia", "Brown", date(2015, 10, 10), school_urn_hint=OAK), "review", set()),
    ("address splits near-identical pupils",
     report("Olivia", "Brown", date(2015, 10, 10), address_line1="2 Ash Close",
            postcode="DY2 7AA"), "matched", {OAK}),
    ("hint alone cannot force a match",
     report("Zain", "Khan", date(2019, 1, 1), school_urn_hint=OAK, **KHAN), "unmatched", set()),
    ("far-off DOB without address finds nobody",
     report("Amelia", "Khan", date(2009, 12, 25), school_urn_hint=OAK), "unmatched", set()),
    ("no candidate", report("Nobody", "Knownhere", date(2012, 1, 1)), "unmatched", set()),
]


@pytest.mark.parametrize(
    ("child", "status", "urns"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_hard_cases(child: ChildReport, status: str, urns: set[str]) -> None:
    decision = decide(child)
    assert decision.status == status, decision.reason
    assert matched_urns(decision) == urns


def test_twin_alone_on_roll_is_not_matched_to_the_other_twin() -> None:
    only_aisha = RosterIndex([row for row in ROSTER if row.given_name != "Amelia"])
    decision = decide(report("Amelia", "Khan", date(2016, 3, 2), **KHAN), only_aisha)
    assert decision.status != "matched"


def test_twins_sharing_a_middle_name_are_not_confused() -> None:
    twins = [
        pupil(OAK, "Amelia Rose", "Khan", date(2016, 3, 2), "F", *KHAN_HOME),
        pupil(OAK, "Aisha Rose", "Khan", date(2016, 3, 2), "F", *KHAN_HOME),
    ]
    decision = decide(report("Amelia Rose", "Khan", date(2016, 3, 2), **KHAN),
                      RosterIndex(twins[1:]))
    assert decision.status != "matched"
    decision = decide(report("Amelia Rose", "Khan", date(2016, 3, 2), **KHAN), RosterIndex(twins))
    assert [match.pupil.given_name for match in decision.matches] == ["Amelia Rose"]


def test_first_name_alone_matches_a_roster_middle_name() -> None:
    roster = [pupil(OAK, "Amelia Rose", "Khan", date(2016, 3, 2), "F", *KHAN_HOME)]
    decision = decide(report("Amelia", "Khan", date(2016, 3, 2), **KHAN), RosterIndex(roster))
    assert decision.matches[0].agreements["given_name"] == "exact"


def test_twin_decision_names_the_right_twin() -> None:
    decision = decide(report("Amelia", "Khan", date(2016, 3, 2), **KHAN))
    assert [match.pupil.given_name for match in decision.matches] == ["Amelia"]


def test_decision_records_field_levels_for_reviewers() -> None:
    decision = decide(report("Bill", "Jones", date(2015, 6, 5), postcode="B1 1AA"))
    levels = decision.matches[0].agreements
    assert levels["given_name"] == "nickname"
    assert levels["family_name"] == "exact"
    assert levels["date_of_birth"] == "day_month_swap"
    assert levels["address"] == "same_postcode"
    assert levels["upn"] == "missing"


def test_transposed_names_are_flagged() -> None:
    decision = decide(report("Lewis", "Zoe", date(2017, 9, 10), postcode="WS1 3CD"))
    assert decision.matches[0].agreements["name_order"] == "swapped"


def test_review_lists_both_candidates() -> None:
    decision = decide(report("Olivia", "Brown", date(2015, 10, 10)))
    assert {candidate.pupil.urn for candidate in decision.candidates} == {OAK, HILL}
    assert decision.matches == ()


def test_mover_who_joined_after_the_incident_is_not_matched() -> None:
    decision = RosterIndex(ROSTER).match(
        report("Oscar", "Brown", date(2014, 8, 8)), on_date=date(2026, 10, 5)
    )
    assert decision.status == "unmatched"


def test_old_school_matches_before_the_move() -> None:
    decision = INDEX.match(report("Oscar", "Brown", date(2014, 8, 8)), on_date=date(2026, 9, 1))
    assert matched_urns(decision) == {OAK}


def test_school_hint_is_a_small_bonus() -> None:
    child = report("William", "Jones", date(2015, 5, 6))
    plain = decide(child).matches[0].score
    hinted = decide(replace(child, school_urn_hint=ELM)).matches[0]
    assert hinted.score - plain == pytest.approx(Thresholds().hint_bonus)
    assert hinted.agreements["school_hint"] == "agree"


def test_hint_elsewhere_costs_little_and_does_not_block_a_strong_match() -> None:
    child = report("William", "Jones", date(2015, 5, 6))
    plain = decide(child).matches[0].score
    elsewhere = decide(replace(child, school_urn_hint=OAK))
    assert elsewhere.status == "matched"
    assert plain - elsewhere.matches[0].score == pytest.approx(Thresholds().hint_penalty)
    assert elsewhere.matches[0].agreements["school_hint"] == "disagree"


def test_invalid_upn_on_report_is_ignored() -> None:
    broken = make_upn(1)[:-1] + "9"
    decision = decide(report("Amelia", "Khan", date(2016, 3, 2), upn=broken, **KHAN))
    assert decision.matches[0].agreements["upn"] == "missing"


def test_rare_surname_weighs_more_than_common_one() -> None:
    common = [pupil(OAK, "Tom", "Smith", date(2015, 1, n), "M", "1 A Road", "B1 1AA")
              for n in range(1, 29)]
    rare = pupil(OAK, "Tom", "Oyelaran", date(2015, 2, 1), "M", "1 A Road", "B1 1AA")
    index = RosterIndex([*common, rare])
    smith = decide(report("Tom", "Smith", date(2015, 1, 1)), index).matches[0].score
    oyelaran = decide(report("Tom", "Oyelaran", date(2015, 2, 1)), index).matches[0].score
    assert oyelaran > smith


def test_folding_and_forms() -> None:
    assert fold_text("Zoë O'Brien") == "zoe obrien"
    assert name_forms("Smith-Jones") == ("smith", "jones", "smithjones")
    assert are_nicknames("bill", "william")


def test_dob_slips() -> None:
    born = date(2015, 5, 6).toordinal()
    assert swapped_dob(born) == date(2015, 6, 5).toordinal()
    assert date(2015, 5, 8).toordinal() in nearby_dobs(born)
    assert date(2015, 5, 60 // 10).toordinal() in nearby_dobs(born)
    assert date(2051, 5, 6).toordinal() in nearby_dobs(born)
    assert date(2016, 6, 6).toordinal() not in nearby_dobs(born)


def test_run_batch_rows() -> None:
    children = [
        ChildReport("c1", "Freya", "Wilson", date(2015, 1, 25)),
        ChildReport("c2", "Olivia", "Brown", date(2015, 10, 10)),
        ChildReport("c3", "Nobody", "Knownhere", date(2012, 1, 1)),
    ]
    rows = run_batch(ROSTER, children, on_date=ON_DATE, open_urns=OPEN_URNS)
    assert [(ref, status, urn) for ref, status, urn, *_ in rows] == [
        ("c1", "matched", ELM), ("c1", "matched", LEA), ("c2", "review", ""),
        ("c3", "unmatched", ""),
    ]
    assert rows[0][3] == make_upn(3)
    assert rows[2][3] == ""
    # the model's explanation travels with the row: the prior, then each field's level
    assert rows[0][6].startswith("prior:-") and "given_name=exact:+" in rows[0][6]
    assert rows[2][5] and "given_name=" in rows[2][6]  # a review says why, with its best
    assert rows[3][4:] == ("", "no candidate on roll at an open school", "")
    buffer = io.StringIO()
    write_results(rows, buffer)
    assert buffer.getvalue().splitlines()[0] == ",".join(RESULTS_HEADER)


ROSTER_CSV = (
    "urn,upn,given_name,preferred_name,family_name,former_family_name,date_of_birth,gender,"
    "address_line1,postcode,enrolment_status,on_roll_from,on_roll_to\n"
    f"100001,{make_upn(1)},Amelia,,Khan,,2016-03-02,F,12 Oak Road,DY1 2AB,C,2020-09-01,\n"
)
CHILDREN_CSV = (
    "child_ref,given_name,family_name,date_of_birth,gender,address_line1,postcode,upn,"
    "school_urn_hint\nc1,Amelia,Khan,2016-03-02,,,,,\n"
)


def test_main_match_writes_results(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text(ROSTER_CSV)
    (tmp_path / "c.csv").write_text(CHILDREN_CSV)
    code = main_match(tmp_path / "r.csv", tmp_path / "c.csv", tmp_path / "out.csv",
                      on_date=ON_DATE)
    assert code == 0
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "child_ref,status,urn,upn,score,reason,explanation"
    assert lines[1].startswith(f"c1,matched,100001,{make_upn(1)},")


def test_results_csv_opens_as_text_in_a_spreadsheet(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text(ROSTER_CSV)
    (tmp_path / "c.csv").write_text(CHILDREN_CSV.replace("\nc1,", "\n=HYPERLINK(1),"))
    assert main_match(tmp_path / "r.csv", tmp_path / "c.csv", tmp_path / "out.csv",
                      on_date=ON_DATE) == 0
    row = (tmp_path / "out.csv").read_text().splitlines()[1].split(",")
    assert row[0] == "'=HYPERLINK(1)" and float(row[4]) > 0  # the score stays a number


def test_main_match_rejects_bad_input_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.csv").write_text(ROSTER_CSV.replace("2016-03-02", "2016-02-31"))
    (tmp_path / "c.csv").write_text(CHILDREN_CSV)
    code = main_match(tmp_path / "r.csv", tmp_path / "c.csv", tmp_path / "out.csv")
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1
    assert "row 2: date_of_birth" in error
    assert "Amelia" not in error
    assert not (tmp_path / "out.csv").exists()


def test_empty_roster_matches_nobody() -> None:
    decision = decide(report("Amelia", "Khan", date(2016, 3, 2)), RosterIndex([]))
    assert decision.status == "unmatched"


def test_batch_on_several_processes_gives_the_same_rows_in_order() -> None:
    children = [ChildReport(f"c{i}", given, family, born) for i, (given, family, born) in
                enumerate([("Freya", "Wilson", date(2015, 1, 25)),
                           ("Olivia", "Brown", date(2015, 10, 10)),
                           ("Nobody", "Knownhere", date(2012, 1, 1)),
                           ("Jack", "Taylor", date(2012, 2, 14))] * 400)]
    index = RosterIndex(ROSTER, open_urns=OPEN_URNS)
    serial = match_children(index, children, on_date=ON_DATE)
    assert match_children(index, children, on_date=ON_DATE, workers=2) == serial
    assert len(serial) == 2000  # Freya is on two rolls


def test_match_cli_refuses_a_bad_worker_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    from services.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["match", "--roster", "r.csv", "--children", "c.csv", "--out", "o.csv",
              "--workers", "0"])
    assert exit_info.value.code == 2
    assert "must be a whole number, 1 or more" in capsys.readouterr().err


def test_a_built_index_is_kept_out_of_the_cyclic_collector() -> None:
    # a full collection over a million-pupil index took 10.8 s inside one match (bench --big)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    run_batch(ROSTER, [], on_date=ON_DATE)
    assert gc.get_freeze_count() > len(ROSTER)


def test_a_name_counts_at_most_four_words_and_still_spells_them_all() -> None:
    from services.matcher.names import MAX_NAME_TOKENS, name_forms

    words = "a b c d e f g h"
    assert name_forms(words) == (*words.split()[:MAX_NAME_TOKENS], "abcdefgh")
    assert name_forms("Mary Jane") == ("mary", "jane", "maryjane")
