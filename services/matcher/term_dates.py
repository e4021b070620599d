"""Term dates: an LA's (the calendar of each of its schools without its own) and a school's
own, from iCalendar (.ics) or, for an LA, a `date,kind` CSV; each change announces the
effective calendar of every school it moves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select

from services.common.db import UnitOfWork
from services.common.problems import Problem
from services.common.school_calendar import CalendarRow
from services.matcher.calendars import la_followers, load_calendars, replace_days
from services.matcher.directory import announce_calendars
from services.matcher.ical import IcsRejected, calendar_from_ics
from services.matcher.models import (
    la_calendar_days,
    local_authorities,
    school_calendar_days,
    schools,
)
from services.matcher.registry import ImportRejected, parse_la_calendar
from services.matcher.registry_files import RowProblem

CalendarFormat = Literal["ics", "csv"]
_ICS_SIGNATURE = b"BEGIN:VCALENDAR"


@dataclass(frozen=True)
class LaCalendarResult:
    """What an LA calendar import did: days written, days replaced, schools now following."""

    la_code: str
    days: int
    replaced: int
    schools_affected: int


@dataclass(frozen=True)
class TermDatesResult:
    """What a school's own term dates import (or removal) did."""

    urn: str
    days: int
    replaced: int


def format_of(data: bytes, filename: str = "") -> CalendarFormat:
    """iCalendar when the file says so (or is named .ics), else CSV."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:len(_ICS_SIGNATURE)].upper()
    return "ics" if head == _ICS_SIGNATURE or filename.lower().endswith(".ics") else "csv"


def read_ics(data: bytes) -> list[CalendarRow]:
    """A term-dates .ics as calendar rows, or ImportRejected naming each bad event."""
    try:
        return list(calendar_from_ics(data))
    except IcsRejected as rejected:
        raise ImportRejected([RowProblem(None, None, p) for p in rejected.problems],
                             title="Invalid iCalendar file") from None


def read_la_calendar(data: bytes, fmt: CalendarFormat) -> list[CalendarRow]:
    """An LA's term dates from either form, validated whole."""
    if fmt == "ics":
        return read_ics(data)
    return [(d.day, "open" if d.kind == "open" else "closed") for d in parse_la_calendar(data)]


async def put_la_calendar(
    la_code: str, data: bytes, *, fmt: CalendarFormat, uow: UnitOfWork, now: datetime,
    topic_prefix: str,
) -> LaCalendarResult:
    """Replace an LA's term dates atomically; announce the calendar of each school that
    follows them (those with no term dates of their own)."""
    days = await asyncio.to_thread(read_la_calendar, data, fmt)
    async with uow:
        await _lock(uow, local_authorities.c.la_code, la_code, "local authority")
        replaced = await replace_days(
            uow.conn, la_calendar_days, la_calendar_days.c.la_code == la_code,
            [{"la_code": la_code, "day": day, "kind": kind} for day, kind in days])
        followers = await la_followers(uow.conn, la_code)
        await announce_calendars(uow.conn, followers, now=now, topic_prefix=topic_prefix)
        await uow.commit()
    return LaCalendarResult(la_code, len(days), replaced, len(followers))


async def get_la_calendar(la_code: str, *, uow: UnitOfWork) -> dict[str, Any]:
    """An LA's term dates, by day, and how many of its schools follow them."""
    async with uow:
        known = (await uow.conn.execute(select(local_authorities.c.la_code).where(
            local_authorities.c.la_code == la_code))).first()
        book = await load_calendars(uow.conn, urns=(), la_codes=[la_code])
        followers = await la_followers(uow.conn, la_code)
    if known is None:
        raise Problem(404, "Not found", "No such local authority.")
    return {"la_code": la_code, "days": _listed(book.la_days.get(la_code, [])),
            "schools_following": len(followers)}


async def put_school_term_dates(
    urn: str, data: bytes | None, *, uow: UnitOfWork, now: datetime, topic_prefix: str,
) -> TermDatesResult:
    """Replace a school's own term dates with an .ics (None: drop them, so that it follows its
    LA's again); its overrides stay on top either way."""
    days = await asyncio.to_thread(read_ics, data) if data is not None else []
    async with uow:
        await _lock(uow, schools.c.urn, urn, "school")
        own = school_calendar_days.c
        replaced = await replace_days(
            uow.conn, school_calendar_days, (own.urn == urn) & (own.source == "term"),
            [{"urn": urn, "day": day, "kind": kind, "source": "term"} for day, kind in days])
        await announce_calendars(uow.conn, [urn], now=now, topic_prefix=topic_prefix)
        await uow.commit()
    return TermDatesResult(urn, len(days), replaced)


async def get_school_calendar(urn: str, *, uow: UnitOfWork) -> dict[str, Any]:
    """A school's effective calendar: whose term dates it follows and every day that differs
    from the default (Monday to Friday less bank holidays)."""
    async with uow:
        row = (await uow.conn.execute(select(schools.c.la_code).where(
            schools.c.urn == urn))).first()
        if row is None:
            raise Problem(404, "Not found", "No such school.")
        book = await load_calendars(uow.conn, urns=[urn], la_codes=[row.la_code])
    return {"urn": urn, "la_code": row.la_code,
            "term_dates_of": book.term_dates_of(urn, row.la_code),
            "overrides": len(book.overrides.get(urn, [])),
            "days": _listed(book.days(urn, row.la_code))}


async def _lock(uow: UnitOfWork, key: Any, value: str, what: str) -> None:
    """Lock the LA's or school's row (concurrent imports queue up), or 404."""
    found = (await uow.conn.execute(select(key).where(key == value).with_for_update())).first()
    if found is None:
        raise Problem(404, "Not found", f"No such {what}.")


def _listed(days: list[CalendarRow]) -> list[dict[str, str]]:
    return [{"day": day.isoformat(), "kind": kind} for day, kind in days]
