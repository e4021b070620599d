"""School calendars: which days a school is open and which closures are school holidays."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

import holidays

OverrideKind = Literal["closed", "open"]
CalendarRow = tuple[date, OverrideKind]

_SATURDAY = 5
_ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    # England and Wales share one list of bank holidays; 'ENG' and 'WLS' are identical here.
    calendar = holidays.country_holidays("GB", subdiv="ENG", years=year)
    dates: frozenset[date] = frozenset(calendar.keys())
    return dates


def is_bank_holiday(day: date) -> bool:
    """Whether the day is an England and Wales bank holiday."""
    return day in _bank_holidays(day.year)


def is_working_day(day: date) -> bool:
    """Whether the day is Monday to Friday and not a bank holiday (an LA working day)."""
    return day.weekday() < _SATURDAY and not is_bank_holiday(day)


@dataclass(frozen=True, slots=True)
class SchoolCalendar:
    """A school's days: working days, less `closed_dates`, plus `open_dates`."""

    closed_dates: frozenset[date] = frozenset()
    open_dates: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        both = self.closed_dates & self.open_dates
        if both:
            raise ValueError(f"dates both closed and open: {sorted(both)}")

    @classmethod
    def from_overrides(cls, overrides: Iterable[tuple[date, OverrideKind]]) -> SchoolCalendar:
        """Build a calendar from `(date, kind)` rows as in the calendar CSV."""
        rows = list(overrides)
        return cls(
            closed_dates=frozenset(day for day, kind in rows if kind == "closed"),
            open_dates=frozenset(day for day, kind in rows if kind == "open"),
        )

    def first_holiday(self, first: date, last: date) -> date | None:
        """The first school-holiday day from `first` to `last` (inclusive), or None."""
        return next((day for day in sorted(self.closed_dates)
                     if first <= day <= last and self.is_holiday(day)), None)

    def is_school_day(self, day: date) -> bool:
        """Whether the school is open on the day."""
        if day in self.open_dates:
            return True
        return is_working_day(day) and day not in self.closed_dates

    def is_holiday(self, day: date) -> bool:
        """Whether the day is a closed working day in a run of two or more (a school holiday)."""
        if not self._is_closed_working_day(day):
            return False
        return self._is_closed_working_day(
            self._neighbour(day, -_ONE_DAY)
        ) or self._is_closed_working_day(self._neighbour(day, _ONE_DAY))

    def _is_closed_working_day(self, day: date) -> bool:
        return is_working_day(day) and not self.is_school_day(day)

    def _neighbour(self, day: date, step: timedelta) -> date:
        # Weekends and bank holidays the school keeps closed neither start nor break a run.
        day += step
        while not (is_working_day(day) or self.is_school_day(day)):
            day += step
        return day


def effective_days(la_days: Iterable[CalendarRow], school_term_days: Iterable[CalendarRow],
                   overrides: Iterable[CalendarRow]) -> list[CalendarRow]:
    """A school's days, by date: its own term dates when it has any, else its LA's, with its
    overrides on top (an override wins on its day)."""
    own = dict(school_term_days)
    days = (own or dict(la_days)) | dict(overrides)
    return sorted(days.items())
