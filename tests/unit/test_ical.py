"""Term dates from iCalendar files: holidays, INSET days, terms, recurrence, time zones."""

from __future__ import annotations

from datetime import date

import pytest

from services.matcher.ical import IcsRejected, calendar_from_ics, classify, read_events
from tests.support.registry_files import all_day, ics


def closed(data: bytes) -> set[date]:
    return {day for day, kind in calendar_from_ics(data) if kind == "closed"}


@pytest.mark.parametrize(("summary", "kind"), [
    ("Christmas holiday", "holiday"), ("Half Term", "holiday"), ("October half-term", "holiday"),
    ("INSET day", "inset"), ("Staff training day - school closed", "inset"),
    ("Autumn Term", "term"), ("Summer term", "term"), ("Sports day", None),
])
def test_events_are_told_apart_by_their_names(summary: str, kind: str | None) -> None:
    assert classify(summary) == kind


def test_christmas_holiday_closes_its_working_days_and_dtend_is_exclusive() -> None:
    days = closed(ics(all_day("Christmas holiday", "20261221", "20270104")))
    assert date(2026, 12, 21) in days and date(2027, 1, 1) not in days  # a bank holiday anyway
    assert date(2026, 12, 26) not in days  # a Saturday is closed without saying so
    assert date(2027, 1, 4) not in days  # DTEND is the first day back


def test_the_working_days_between_two_terms_are_the_holiday() -> None:
    days = closed(ics(all_day("Spring term", "20270104", "20270327"),
                      all_day("Summer term", "20270412", "20270723")))
    assert date(2027, 3, 30) in days and date(2027, 4, 9) in days
    assert date(2027, 3, 29) not in days  # Easter Monday: closed as a bank holiday
    assert date(2027, 3, 26) not in days and date(2027, 4, 12) not in days


def test_a_half_term_inside_a_term_closes_those_days() -> None:
    days = closed(ics(all_day("Autumn term", "20260903", "20261219"),
                      all_day("Half term", "20261026", "20261031")))
    assert {date(2026, 10, 26), date(2026, 10, 30)} <= days
    assert date(2026, 10, 23) not in days


def test_a_recurring_inset_day_is_expanded() -> None:
    rule = all_day("INSET day", "20260904", "20260905") + "RRULE:FREQ=YEARLY;COUNT=3\r\n"
    days = closed(ics(rule))
    assert {date(2026, 9, 4), date(2028, 9, 4)} <= days
    assert date(2027, 9, 4) not in days  # a Saturday in 2027


def test_a_midnight_to_midnight_event_in_london_counts_as_all_day() -> None:
    event = ("SUMMARY:Easter holiday\r\nDTSTART;TZID=Europe/London:20270329T000000\r\n"
             "DTEND;TZID=Europe/London:20270410T000000\r\n")
    days = closed(ics(event))
    assert date(2027, 3, 30) in days and date(2027, 4, 9) in days


@pytest.mark.parametrize(("event", "said"), [
    (all_day("Sports day", "20270610", "20270611"), "'Sports day' on 2027-06-10"),
    ("SUMMARY:Parents evening holiday\r\nDTSTART:20270610T170000Z\r\n"
     "DTEND:20270610T190000Z\r\n", "is not an all-day event"),
    ("SUMMARY:INSET day\r\nDTSTART:20270610T000000\r\nDTEND:20270611T000000\r\n",
     "floating time"),
    (all_day("Half term", "20270610", "20270601"), "ends before it starts"),
    ("SUMMARY:Half term\r\nDTSTART;VALUE=DATE:20271345\r\nDTEND;VALUE=DATE:20271350\r\n",
     "event 'Half term': a date, time or recurrence rule in it cannot be read"),
    (all_day("INSET day", "20270104", "20270105") + "RRULE:FREQ=SOMETIMES\r\n",
     "event 'INSET day': a date, time or recurrence rule in it cannot be read"),
    # a rule repeating within a day would expand to millions of occurrences
    ("SUMMARY:INSET day\r\nDTSTART:20270104T000000Z\r\nDTEND:20270105T000000Z\r\n"
     "RRULE:FREQ=SECONDLY\r\n", "recurs more often than once a day"),
    (all_day("INSET day", "20270104", "20270105") + "RRULE:FREQ=DAILY;BYMINUTE=1,2\r\n",
     "recurs more often than once a day"),
])
def test_wrong_or_ambiguous_events_are_refused_by_name(event: str, said: str) -> None:
    with pytest.raises(IcsRejected) as refused:
        read_events(ics(all_day("Autumn term", "20260903", "20261219"), event))
    assert any(said in p for p in refused.value.problems), refused.value.problems


def test_a_file_that_is_not_icalendar_is_refused() -> None:
    with pytest.raises(IcsRejected, match=r"not an iCalendar file|no events"):
        read_events(b"urn,date,kind\n100001,2027-01-04,closed\n")


def test_an_event_past_the_three_years_read_is_refused_not_dropped() -> None:
    with pytest.raises(IcsRejected) as refused:
        read_events(ics(all_day("Autumn term", "20260903", "20261219"),
                        all_day("Half term", "20301028", "20301102")))
    assert refused.value.problems == [
        "event 'Half term' on 2030-10-28: starts more than three years after the file's first "
        "event (import at most three years at a time)"]


def test_recurring_series_past_the_limit_are_refused_without_expanding_them_all() -> None:
    daily = [all_day("INSET day", f"2027{m:02d}01", f"2027{m:02d}02") + "RRULE:FREQ=DAILY\r\n"
             for m in range(1, 13)]
    with pytest.raises(IcsRejected) as refused:
        read_events(ics(*daily))
    assert refused.value.problems == ["more than 5000 events"]
