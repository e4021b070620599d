"""Each school's effective calendar, read from the registry: its LA's term dates unless it has
its own, its overrides on top (the rule: services/common/school_calendar.effective_days)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, Table, delete, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import any_of
from services.common.school_calendar import CalendarRow, SchoolCalendar, effective_days
from services.matcher.models import la_calendar_days, school_calendar_days, schools

TermDatesOf = Literal["school", "la", "none"]  # whose term dates a school's calendar follows
Rows = dict[str, list[CalendarRow]]


class CalendarBook:
    """The rows the effective calendars are made of: LAs' term dates, schools' own, overrides."""

    def __init__(self, la_days: Rows, term_days: Rows, overrides: Rows) -> None:
        self.la_days, self.term_days, self.overrides = la_days, term_days, overrides
        self._by_la: dict[str, SchoolCalendar] = {}
        self._first_holiday: dict[tuple[str, date], date | None] = {}

    def days(self, urn: str, la_code: str) -> list[CalendarRow]:
        """The school's effective days, by date."""
        return effective_days(self.la_days.get(la_code, ()), self.term_days.get(urn, ()),
                              self.overrides.get(urn, ()))

    def term_dates_of(self, urn: str, la_code: str) -> TermDatesOf:
        """Whose term dates the school follows: its own, its LA's, or none (the bare default)."""
        if self.term_days.get(urn):
            return "school"
        return "la" if self.la_days.get(la_code) else "none"

    def calendar(self, urn: str, la_code: str) -> SchoolCalendar:
        """The school's effective calendar; schools that follow their LA unchanged share one."""
        if self._own(urn):
            return SchoolCalendar.from_overrides(self.days(urn, la_code))
        if la_code not in self._by_la:
            self._by_la[la_code] = SchoolCalendar.from_overrides(self.la_days.get(la_code, ()))
        return self._by_la[la_code]

    def first_holiday(self, urn: str, la_code: str, since: date) -> date | None:
        """The school's first holiday day from `since` on; worked out once per LA for the
        schools that follow it unchanged (readiness asks for every school at each scrape)."""
        if self._own(urn):
            return self.calendar(urn, la_code).first_holiday(since, date.max)
        key = (la_code, since)
        if key not in self._first_holiday:
            self._first_holiday[key] = self.calendar(urn, la_code).first_holiday(since, date.max)
        return self._first_holiday[key]

    def _own(self, urn: str) -> bool:
        return urn in self.term_days or urn in self.overrides


async def load_calendars(conn: AsyncConnection, *, urns: Sequence[str] | None = None,
                         la_codes: Sequence[str] | None = None) -> CalendarBook:
    """The rows of the named schools and LAs (every one when None), in two queries."""
    lq = select(la_calendar_days.c.la_code, la_calendar_days.c.day, la_calendar_days.c.kind)
    if la_codes is not None:
        lq = lq.where(la_calendar_days.c.la_code == any_of(la_codes))
    s = school_calendar_days.c
    sq = select(s.urn, s.day, s.kind, s.source)
    if urns is not None:
        sq = sq.where(s.urn == any_of(urns))
    la_days: Rows = defaultdict(list)
    for la_code, day, kind in await conn.execute(lq.order_by(la_calendar_days.c.day)):
        la_days[la_code].append((day, kind))
    own: dict[str, Rows] = {"term": defaultdict(list), "override": defaultdict(list)}
    for urn, day, kind, source in await conn.execute(sq.order_by(s.day)):
        own[source][urn].append((day, kind))
    return CalendarBook(dict(la_days), dict(own["term"]), dict(own["override"]))


async def replace_days(conn: AsyncConnection, table: Table, where: ColumnElement[bool],
                       rows: list[dict[str, Any]]) -> int:
    """Replace the calendar rows `where` selects with `rows`; how many were replaced."""
    replaced = (await conn.execute(delete(table).where(where))).rowcount
    if rows:
        await conn.execute(insert(table), rows)
    return replaced


async def la_followers(conn: AsyncConnection, la_code: str) -> list[str]:
    """The LA's schools with no term dates of their own: their calendar is the LA's."""
    s = school_calendar_days.c
    own = exists().where(s.urn == schools.c.urn, s.source == "term")
    rows = await conn.execute(select(schools.c.urn).where(
        schools.c.la_code == la_code, ~own).order_by(schools.c.urn))
    return list(rows.scalars())
