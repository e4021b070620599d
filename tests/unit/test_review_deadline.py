"""A review's deadline: the earliest school-day start among its candidate schools."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from services.common.school_calendar import SchoolCalendar
from services.matcher.deadlines import next_school_day_start, review_deadline
from services.matcher.decisions import deadline_for
from services.matcher.domain import RosterIndex
from services.matcher.index import Registry, SchoolInfo
from services.matcher.records import Candidate, Pupil

DEFAULT = SchoolCalendar()
EARLY, USUAL, LATE = time(8, 30), time(8, 45), time(8, 50)
INSET_MONDAY = SchoolCalendar.from_overrides([(date(2026, 11, 30), "closed")])
SATURDAY_SCHOOL = SchoolCalendar.from_overrides([(date(2026, 11, 28), "open")])
NEVER_OPEN = SchoolCalendar(closed_dates=frozenset(
    date(2026, 11, 27) + timedelta(days=n) for n in range(420)))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(("queued_at", "schools", "deadline"), [
    pytest.param(utc(2026, 11, 27, 18, 0), [(DEFAULT, USUAL)], utc(2026, 11, 30, 8, 45),
                 id="friday-evening-waits-the-weekend"),
    pytest.param(utc(2026, 5, 1, 17, 0), [(DEFAULT, USUAL)], utc(2026, 5, 5, 7, 45),
                 id="may-day-bank-holiday-then-tuesday-in-bst"),
    pytest.param(utc(2026, 4, 2, 19, 0), [(DEFAULT, USUAL)], utc(2026, 4, 7, 7, 45),
                 id="easter-good-friday-to-easter-monday"),
    pytest.param(utc(2026, 12, 24, 17, 0), [(DEFAULT, USUAL)], utc(2026, 12, 29, 8, 45),
                 id="christmas-and-boxing-day-observed"),
    pytest.param(utc(2026, 11, 27, 18, 0), [(INSET_MONDAY, USUAL)], utc(2026, 12, 1, 8, 45),
                 id="inset-monday"),
    pytest.param(utc(2026, 11, 27, 18, 0), [(SATURDAY_SCHOOL, USUAL)], utc(2026, 11, 28, 8, 45),
                 id="open-override-on-a-saturday"),
    pytest.param(utc(2026, 12, 1, 7, 0), [(DEFAULT, USUAL)], utc(2026, 12, 1, 8, 45),
                 id="before-the-bell-same-morning"),
    pytest.param(utc(2026, 12, 1, 8, 45), [(DEFAULT, USUAL)], utc(2026, 12, 2, 8, 45),
                 id="at-the-bell-next-day"),
    pytest.param(utc(2026, 12, 1, 10, 0), [(DEFAULT, USUAL)], utc(2026, 12, 2, 8, 45),
                 id="during-the-school-day-next-day"),
    pytest.param(utc(2026, 11, 27, 18, 0), [(DEFAULT, USUAL), (DEFAULT, EARLY)],
                 utc(2026, 11, 30, 8, 30), id="two-candidates-earlier-start-wins"),
    pytest.param(utc(2026, 11, 27, 18, 0), [(INSET_MONDAY, EARLY), (DEFAULT, LATE)],
                 utc(2026, 11, 30, 8, 50), id="two-candidates-the-one-open-first-wins"),
    pytest.param(utc(2026, 3, 28, 12, 0), [(DEFAULT, USUAL)], utc(2026, 3, 30, 7, 45),
                 id="across-the-spring-clock-change"),
    pytest.param(utc(2026, 10, 24, 12, 0), [(DEFAULT, USUAL)], utc(2026, 10, 26, 8, 45),
                 id="across-the-autumn-clock-change"),
    pytest.param(utc(2026, 11, 27, 18, 0), [], utc(2026, 11, 30, 8, 45),
                 id="no-candidate-school-default-calendar-0845"),
    pytest.param(utc(2026, 11, 27, 18, 0), [(NEVER_OPEN, EARLY)], utc(2026, 11, 30, 8, 45),
                 id="a-school-never-open-falls-back-to-the-default"),
    pytest.param(utc(2026, 11, 27, 18, 0), [(NEVER_OPEN, EARLY), (INSET_MONDAY, LATE)],
                 utc(2026, 12, 1, 8, 50), id="a-school-never-open-is-ignored"),
])
def test_review_deadline(queued_at: datetime, schools: list[tuple[SchoolCalendar, time]],
                         deadline: datetime) -> None:
    assert review_deadline(queued_at, schools) == deadline


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_school_day_start(datetime(2026, 12, 1, 7, 0))


def test_a_calendar_with_no_school_day_has_no_start() -> None:
    assert next_school_day_start(utc(2026, 11, 27, 18, 0), calendar=NEVER_OPEN) is None


def _candidate(urn: str) -> Candidate:
    pupil = Pupil(urn=urn, upn="", given_name="Ada", preferred_name="", family_name="Lovelace",
                  former_family_name="", date_of_birth=date(2016, 1, 1), gender="",
                  address_line1="", postcode="", enrolment_status="C")
    return Candidate(pupil=pupil, score=10.0, agreements={})


def test_deadline_for_reads_each_candidate_school_from_the_registry_snapshot() -> None:
    registry = Registry(index=RosterIndex([]), version=(), schools={
        "100001": SchoolInfo("100001", "Oak", "330", "", "open", EARLY, INSET_MONDAY),
        "100002": SchoolInfo("100002", "Elm", "330", "", "open", LATE),
    })
    queued = utc(2026, 11, 27, 18, 0)
    both = (_candidate("100001"), _candidate("100002"), _candidate("999999"))  # one unknown
    assert deadline_for(registry, both, queued) == utc(2026, 11, 30, 8, 50)
    assert deadline_for(registry, (_candidate("100001"),), queued) == utc(2026, 12, 1, 8, 30)
    assert deadline_for(registry, (_candidate("999999"),), queued) == utc(2026, 11, 30, 8, 45)
