"""A review's deadline: the earliest start of the school day among its candidate schools."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

from services.common.local_time import LONDON
from services.common.school_calendar import SchoolCalendar

DEFAULT_DAY_STARTS = time(8, 45)
_SEARCH_DAYS = 400
SchoolDays = tuple[SchoolCalendar, time]  # a school's calendar and when its day starts


def next_school_day_start(after: datetime, *, calendar: SchoolCalendar | None = None,
                          day_starts_at: time = DEFAULT_DAY_STARTS) -> datetime | None:
    """The first start of a school day strictly after `after` (aware), in UTC; None when the
    calendar has no school day within 400 days.

    Days are counted in Europe/London. A wall time the spring change skips lands after the
    gap; one the autumn change repeats means its first occurrence (fold=0), as the
    notifier's schedule counts them.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    calendar = calendar or SchoolCalendar()
    first = after.astimezone(LONDON).date()
    for offset in range(_SEARCH_DAYS):
        day = first + timedelta(days=offset)
        if not calendar.is_school_day(day):
            continue
        begins = datetime.combine(day, day_starts_at.replace(tzinfo=None),
                                  tzinfo=LONDON).astimezone(UTC)
        if begins > after:
            return begins
    return None


def review_deadline(queued_at: datetime, schools: Iterable[SchoolDays]) -> datetime:
    """The earliest next school-day start among the candidate schools, each by its own
    calendar and start time; with none known (or none open within 400 days), the default
    calendar (Monday to Friday less bank holidays) and 08:45."""
    starts = [start for calendar, begins in schools
              if (start := next_school_day_start(queued_at, calendar=calendar,
                                                 day_starts_at=begins)) is not None]
    if starts:
        return min(starts)
    fallback = next_school_day_start(queued_at)
    assert fallback is not None  # the default calendar has a working day every week
    return fallback
