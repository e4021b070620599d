"""Term dates in scheduling: a school on its LA's term dates (the demo LA's published .ics) or
on its own, with overrides on top, across Christmas, Easter (movable) and the summer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pytest

from services.common.school_calendar import CalendarRow, SchoolCalendar, effective_days
from services.demo import term_dates
from services.matcher.ical import calendar_from_ics
from services.matcher.term_dates import format_of
from services.notifier.scheduling import schedule_push
from tests.support.registry_files import academy_term_dates

LA_DAYS = calendar_from_ics(term_dates())
OWN_DAYS = calendar_from_ics(academy_term_dates())
OPEN_ON_INSET: list[CalendarRow] = [(date(2027, 1, 4), "open")]  # the LA's INSET day


def calendar(own: list[CalendarRow] | None = None,
             overrides: list[CalendarRow] | None = None) -> SchoolCalendar:
    return SchoolCalendar.from_overrides(effective_days(LA_DAYS, own or [], overrides or []))


BARE = SchoolCalendar()
LA = calendar()
OWN = calendar(OWN_DAYS)
LA_OPEN_ON_INSET = calendar(overrides=OPEN_ON_INSET)


def test_a_schools_own_term_dates_replace_its_las_and_overrides_win_on_their_day() -> None:
    la = [(date(2026, 12, 21), "closed"), (date(2026, 12, 22), "closed")]
    own = [(date(2026, 12, 17), "closed")]
    assert effective_days(la, [], []) == la
    assert effective_days(la, own, []) == own  # none of the LA's days is kept
    assert effective_days(la, [], [(date(2026, 12, 22), "open")]) == [
        (date(2026, 12, 21), "closed"), (date(2026, 12, 22), "open")]
    assert effective_days(la, own, [(date(2026, 12, 17), "open"), (date(2027, 2, 1), "closed")]
                          ) == [(date(2026, 12, 17), "open"), (date(2027, 2, 1), "closed")]
    assert effective_days([], [], []) == []


@dataclass(frozen=True)
class Case:
    calendar: SchoolCalendar
    matched_at: str
    cover: bool
    push_at: str
    role: str = "dsl"
    la_at: str | None = None


# fmt: off
CASES = [
    # the examples: on the bare default both holidays look like school days
    pytest.param(Case(BARE, "2026-12-24T20:00+00:00", False, "2026-12-29T07:00+00:00"),
                 id="bare-christmas-eve"),
    pytest.param(Case(BARE, "2027-08-12T21:00+01:00", False, "2027-08-13T07:00+01:00"),
                 id="bare-12-august"),
    # the same two on the LA's term dates
    pytest.param(Case(LA, "2026-12-24T20:00+00:00", True, "2026-12-29T07:00+00:00",
                      "holiday_cover"), id="la-christmas-eve-cover"),
    pytest.param(Case(LA, "2026-12-24T20:00+00:00", False, "2027-01-05T07:00+00:00",
                      la_at="2026-12-29T07:00+00:00"), id="la-christmas-eve-held-past-inset"),
    pytest.param(Case(LA, "2027-08-12T21:00+01:00", True, "2027-08-13T07:00+01:00",
                      "holiday_cover"), id="la-12-august-cover"),
    pytest.param(Case(LA, "2027-08-12T21:00+01:00", False, "2027-09-02T07:00+01:00",
                      la_at="2027-08-13T07:00+01:00"), id="la-12-august-held-to-september"),
    # Easter moves: 28 March in 2027, 16 April in 2028; Good Friday and Easter Monday in it
    pytest.param(Case(LA, "2027-03-25T19:00+00:00", True, "2027-03-30T07:00+01:00",
                      "holiday_cover"), id="la-easter-2027-cover-after-the-long-weekend"),
    pytest.param(Case(LA, "2027-03-25T19:00+00:00", False, "2027-04-12T07:00+01:00",
                      la_at="2027-03-30T07:00+01:00"), id="la-easter-2027-held"),
    pytest.param(Case(LA, "2028-04-07T19:00+01:00", False, "2028-04-24T07:00+01:00",
                      la_at="2028-04-10T07:00+01:00"), id="la-easter-2028-held"),
    pytest.param(Case(LA, "2028-04-13T10:00+01:00", True, "2028-04-13T10:00+01:00",
                      "holiday_cover"), id="la-easter-2028-cover-in-working-hours"),
    pytest.param(Case(LA, "2027-06-10T11:00+01:00", False, "2027-06-10T11:00+01:00"),
                 id="la-summer-term-day"),
    pytest.param(Case(LA, "2027-07-21T19:00+01:00", False, "2027-09-02T07:00+01:00",
                      la_at="2027-07-22T07:00+01:00"), id="la-last-day-of-summer-term"),
    # an override opens the LA's INSET day for this school: the DSL is back a day sooner
    pytest.param(Case(LA_OPEN_ON_INSET, "2026-12-24T20:00+00:00", False,
                      "2027-01-04T07:00+00:00", la_at="2026-12-29T07:00+00:00"),
                 id="la-override-opens-the-inset-day"),
    # the school's own dates, not the LA's
    pytest.param(Case(OWN, "2026-12-24T20:00+00:00", False, "2027-01-06T07:00+00:00",
                      la_at="2026-12-29T07:00+00:00"), id="own-christmas-eve-held"),
    pytest.param(Case(OWN, "2026-12-17T10:00+00:00", True, "2026-12-17T10:00+00:00",
                      "holiday_cover"), id="own-holiday-while-the-la-is-in-term"),
    pytest.param(Case(LA, "2026-12-17T10:00+00:00", True, "2026-12-17T10:00+00:00"),
                 id="la-in-term-that-day"),
    pytest.param(Case(OWN, "2027-04-12T10:00+01:00", False, "2027-04-19T07:00+01:00",
                      la_at="2027-04-12T10:00+01:00"), id="own-easter-after-the-las"),
    pytest.param(Case(OWN, "2027-07-19T09:00+01:00", True, "2027-07-19T09:00+01:00",
                      "holiday_cover"), id="own-summer-starts-before-the-las"),
    pytest.param(Case(OWN, "2027-08-12T21:00+01:00", False, "2027-09-02T07:00+01:00",
                      la_at="2027-08-13T07:00+01:00"), id="own-12-august-held"),
]
# fmt: on


@pytest.mark.parametrize("case", CASES)
def test_pushes_follow_the_effective_calendar(case: Case) -> None:
    plan = schedule_push(datetime.fromisoformat(case.matched_at), calendar=case.calendar,
                         day_starts_at=time(8, 45), has_holiday_cover=case.cover)
    assert plan.push_at == datetime.fromisoformat(case.push_at).astimezone(UTC)
    assert plan.recipient_role == case.role
    expected_la = datetime.fromisoformat(case.la_at) if case.la_at else None
    if case.role == "holiday_cover":
        expected_la = plan.push_at  # the LA hears beside the cover
    assert plan.also_tell_la_at == expected_la
    assert (plan.dsl_return_at is not None) == (case.role == "holiday_cover")


def test_christmas_eve_with_cover_tells_cover_and_the_la_then_the_dsl_on_return() -> None:
    plan = schedule_push(datetime(2026, 12, 24, 20, 0, tzinfo=UTC), calendar=LA,
                         day_starts_at=time(8, 45), has_holiday_cover=True)
    after_bank_holidays = datetime(2026, 12, 29, 7, 0, tzinfo=UTC)
    assert (plan.push_at, plan.recipient_role, plan.also_tell_la_at) == (
        after_bank_holidays, "holiday_cover", after_bank_holidays)
    assert plan.dsl_return_at == datetime(2027, 1, 5, 7, 0, tzinfo=UTC)  # 4 Jan is INSET


def test_the_demo_term_dates_span_three_academic_years_with_every_kind_of_break() -> None:
    closed = {day for day, _ in LA_DAYS}
    assert min(closed) == date(2026, 9, 1) and max(closed) == date(2029, 8, 31)
    for holiday in (date(2026, 10, 26), date(2026, 12, 21), date(2027, 2, 15),
                    date(2027, 3, 30), date(2027, 6, 1), date(2027, 8, 2), date(2028, 4, 18)):
        assert LA.is_holiday(holiday), holiday
    assert not LA.is_school_day(date(2027, 1, 4))  # the INSET day after Christmas


@pytest.mark.parametrize(("data", "name", "fmt"), [
    (b"BEGIN:VCALENDAR\r\n", "dates.txt", "ics"),
    (b"\xef\xbb\xbf\r\n begin:vcalendar\r\n", "", "ics"),
    (b"date,kind\n", "dates.ics", "ics"),  # named .ics: read (and refused) as iCalendar
    (b"date,kind\n", "dates.csv", "csv"),
])
def test_a_calendar_file_is_told_by_its_content_then_its_name(data: bytes, name: str,
                                                              fmt: str) -> None:
    assert format_of(data, name) == fmt
