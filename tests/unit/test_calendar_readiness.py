"""Readiness of calendars: no school on the bare default, holiday cover before a holiday, an
LA's next academic year known from 1 June."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from services.common.doctor import ReadinessProblem
from services.common.school_calendar import SchoolCalendar
from services.demo import term_dates
from services.matcher.ical import calendar_from_ics
from services.matcher.readiness import (
    LaFacts,
    SchoolFacts,
    la_problems,
    next_academic_year,
    school_problems,
)

DEMO_LA = SchoolCalendar.from_overrides(calendar_from_ics(term_dates()))
ROLES = frozenset({"dsl", "deputy_dsl"})
LA_ROLES = frozenset({"safeguarding", "duty_manager"})
LONE_INSET = SchoolCalendar(closed_dates=frozenset({date(2027, 2, 1)}))


def codes(found: list[ReadinessProblem]) -> list[str]:
    return [p.code for p in found]


def problems_of(calendar: SchoolCalendar, today: date, roles: frozenset[str] = ROLES,
                **changes: Any) -> list[ReadinessProblem]:
    """A school's problems on `today`, its first holiday read from its calendar."""
    facts = SchoolFacts("100001", "Oak Road", "332", True, "open", roles, True,
                        calendar.first_holiday(today, date.max))
    return school_problems(replace(facts, **changes), today=today)


COVERED = ROLES | {"holiday_cover"}


@pytest.mark.parametrize(("calendar", "today", "roles", "changes", "expected"), [
    pytest.param(SchoolCalendar(), date(2026, 12, 1), ROLES, {},
                 ["school_calendar_bare_default"], id="bare-default"),
    pytest.param(LONE_INSET, date(2026, 12, 1), ROLES, {}, ["school_calendar_bare_default"],
                 id="a-lone-inset-day-is-no-holiday"),
    pytest.param(DEMO_LA, date(2026, 12, 1), ROLES, {}, [], id="holiday-20-days-away"),
    pytest.param(DEMO_LA, date(2026, 12, 7), ROLES, {}, ["school_no_holiday_cover"],
                 id="holiday-in-14-days-no-cover"),
    pytest.param(DEMO_LA, date(2026, 12, 22), ROLES, {}, ["school_no_holiday_cover"],
                 id="in-the-holiday-no-cover"),
    pytest.param(DEMO_LA, date(2026, 12, 7), COVERED, {}, [], id="holiday-in-14-days-covered"),
    pytest.param(SchoolCalendar(), date(2026, 12, 1), ROLES, {"participates": False}, [],
                 id="not-taking-part"),
    pytest.param(SchoolCalendar(), date(2026, 12, 1), ROLES, {"status": "closed"}, [],
                 id="closed-school"),
    pytest.param(DEMO_LA, date(2029, 9, 1), ROLES, {}, ["school_calendar_bare_default"],
                 id="term-dates-run-out"),
    pytest.param(SchoolCalendar(closed_dates=frozenset({date(2028, 1, 4), date(2028, 1, 5)})),
                 date(2026, 12, 1), ROLES, {}, ["school_calendar_bare_default"],
                 id="a-holiday-more-than-a-year-away"),
])
def test_a_schools_calendar_problems(calendar: SchoolCalendar, today: date,
                                     roles: frozenset[str], changes: dict[str, Any],
                                     expected: list[str]) -> None:
    assert codes(problems_of(calendar, today, roles, **changes)) == expected


def test_the_holiday_cover_problem_names_the_day_the_holiday_begins() -> None:
    [problem] = problems_of(DEMO_LA, date(2026, 12, 10))
    assert problem.line() == (
        "school:100001: Oak Road takes part, its holiday begins Monday 21 December and it has "
        "no holiday_cover contact: a child reported then waits for the DSL's return "
        "[school_no_holiday_cover]")


ACADEMIC_2027 = frozenset({date(2027, 10, 25)})


@pytest.mark.parametrize(("today", "term_dates_days", "followed", "flagged"), [
    pytest.param(date(2027, 5, 31), frozenset(), True, False, id="before-june"),
    pytest.param(date(2027, 6, 1), frozenset(), True, True, id="first-of-june"),
    pytest.param(date(2027, 8, 31), frozenset({date(2027, 7, 1)}), True, True,
                 id="only-this-years"),
    pytest.param(date(2027, 6, 1), ACADEMIC_2027, True, False, id="next-year-known"),
    pytest.param(date(2027, 6, 1), frozenset(), False, False, id="no-school-follows-it"),
    pytest.param(date(2027, 9, 1), frozenset(), True, False, id="year-under-way"),
])
def test_an_la_needs_next_years_term_dates_from_june(
    today: date, term_dates_days: frozenset[date], followed: bool, flagged: bool
) -> None:
    la = LaFacts("332", "Dudley", LA_ROLES, term_dates_days, followed)
    found = la_problems(la, today=today)
    assert codes(found) == (["la_no_term_dates_next_year"] if flagged else [])
    if flagged:
        assert found[0].message.startswith("Dudley has no term dates for 2027-28 (1 September")


def test_the_next_academic_year_is_the_one_starting_in_september() -> None:
    assert next_academic_year(date(2027, 6, 1)) == (date(2027, 9, 1), date(2028, 7, 31))
    assert next_academic_year(date(2027, 12, 1)) is None
