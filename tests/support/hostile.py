"""Hostile input the hostile tier shares: injection strings, malformed roster, calendar and
term-dates files, and a school whose roll they must leave alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.matcher.models import roster_imports
from tests.support.ids import next_urn
from tests.support.registry import opened_roll, post_roster, register_school
from tests.support.registry_files import all_day, calendar_csv, ics, pupil_row, roll, roster_csv

PAYLOADS = (
    "'; DROP TABLE incidents;--",
    "Robert'); DROP TABLE pupils;--",
    '" OR "1"="1',
    "{{7*7}}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{% print(7*7) %}",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "%s%n%x%d",
    "$(touch /tmp/pwned)",
)
CANARY = "Qzhostilecanary"  # a name that must never come back in an error body
Build = Callable[[str], bytes]


def lines_of(urn: str, size: int = 4) -> list[str]:
    """A roster as lines: the header, then `size` good pupils."""
    return roll(urn, size, start=500).splitlines()


def csv_bytes(lines: list[str], end: str = "\n") -> bytes:
    """Lines joined back into a file."""
    return (end.join(lines) + end).encode()


def with_row(urn: str, index: int, **changes: str) -> bytes:
    """1,000 good pupils with one changed; the header is row 1, so pupil i is on row i + 2."""
    rows = [pupil_row(urn, 1000 + i) for i in range(1000)]
    rows[index] = pupil_row(urn, 1000 + index, **changes)
    return roster_csv(*rows).encode()


MALFORMED_ROSTERS: dict[str, tuple[Build, int, str | None]] = {
    "wrong header": (lambda u: csv_bytes(
        [lines_of(u)[0].replace("given_name", "first_name"), *lines_of(u)[1:]]), 1, None),
    "missing column": (lambda u: csv_bytes(
        [line.rsplit(",", 1)[0] for line in lines_of(u)]), 1, None),
    "extra column": (lambda u: csv_bytes(
        [*lines_of(u)[:3], lines_of(u)[3] + f",{CANARY}", *lines_of(u)[4:]]), 4, None),
    "unbalanced quote": (lambda u: csv_bytes(
        [*lines_of(u)[:2], lines_of(u)[2].replace("Zebedee", f'"{CANARY}'), *lines_of(u)[3:]]),
        3, None),
    "NUL byte": (lambda u: with_row(u, 40, family_name=f"{CANARY}\x00"), 42, "family_name"),
    "bad UTF-8": (lambda u: csv_bytes(lines_of(u)).replace(b"Quibble502", b"Qu\xffibble"), 4,
                  None),
    "bad row in the middle of 1,000": (
        lambda u: with_row(u, 500, date_of_birth="31/02/2016"), 502, "date_of_birth"),
    "CRLF mix with a bad row": (lambda u: with_row(u, 700, gender="Q").replace(
        b"\n", b"\r\n", 300), 702, "gender"),
}


CALENDARS: dict[str, tuple[Callable[[str], bytes], int, str | None]] = {
    "wrong header": (lambda u: calendar_csv((u, "2027-01-04", "closed")).replace(
        "kind", "type").encode(), 1, None),
    "extra column": (lambda u: calendar_csv((u, "2027-01-04", "closed")).replace(
        "closed", f"closed,{CANARY}").encode(), 2, None),
    "unbalanced quote": (lambda u: calendar_csv(
        (u, '"2027-01-04', "closed"), (u, "2027-01-05", "closed")).encode(), 2, None),
    "NUL byte": (lambda u: calendar_csv((u, "2027-01-04", "clo\x00sed")).encode(), 2, "kind"),
    "bad UTF-8": (lambda u: calendar_csv((u, "2027-01-04", "closed")).encode().replace(
        b"closed", b"clos\xffd"), 2, "kind"),
    "bad row in the middle of 1,000": (lambda u: calendar_csv(*(
        (u, (date(2027, 1, 1) + timedelta(days=i)).isoformat() if i != 500 else "2027-02-30",
         "closed") for i in range(1000))).encode(), 502, "date"),
}


def _with_hidden(event: str) -> str:
    """The event with the canary where no refusal names it (its description and location)."""
    return event + f"DESCRIPTION:{CANARY}\r\nLOCATION:{CANARY}\r\n"


GOOD_TERM = all_day("Autumn term", "20260903", "20261219")
# a term-dates .ics refused whole: how it is built, the start of its first problem
MALFORMED_TERM_DATES: dict[str, tuple[bytes, str]] = {
    "not iCalendar": (f"date,kind\n2027-01-04,closed\n{CANARY}\n".encode(),
                      "not an iCalendar file"),
    "truncated": (ics(_with_hidden(GOOD_TERM))[:150], "not an iCalendar file"),
    "no events": (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "the file has no"),
    "NUL byte in a name": (ics(GOOD_TERM, _with_hidden(all_day(
        "Sports\x00day", "20270610", "20270611"))), "event 'Sports\\x00day' on 2027-06-10"),
    "unnamed kind": (ics(GOOD_TERM, _with_hidden(all_day("Sports day", "20270610", "20270611"))),
                     "event 'Sports day' on 2027-06-10: its name says neither"),
    "floating time": (ics(GOOD_TERM, _with_hidden(
        "SUMMARY:INSET day\r\nDTSTART:20270610T000000\r\nDTEND:20270611T000000\r\n")),
        "event 'INSET day': a time without a time zone"),
    "broken date": (ics(_with_hidden(
        "SUMMARY:Half term\r\nDTSTART;VALUE=DATE:2027-02-15\r\nDTEND;VALUE=DATE:x\r\n")),
        "event 'Half term': a date, time or recurrence rule in it cannot be read"),
    "every second": (ics(GOOD_TERM, _with_hidden(
        "SUMMARY:INSET day\r\nDTSTART:20270104T000000Z\r\nDTEND:20270105T000000Z\r\n"
        "RRULE:FREQ=SECONDLY\r\n")), "event 'INSET day': recurs more often than once a day"),
    "ten thousand days": (ics(*(all_day("INSET day", "20270104", "20270105") + "RRULE:FREQ="
                                "DAILY\r\n" for _ in range(10))), "more than 5000 events"),
}


async def roll_of(engine: AsyncEngine, urn: str) -> tuple[list[str], int]:
    """The family names on the school's roll and how many imports it has had."""
    names = sorted(row["family_name"] for row in await opened_roll(engine, urn))
    async with engine.connect() as conn:
        imports = (await conn.execute(select(func.count()).select_from(roster_imports).where(
            roster_imports.c.urn == urn))).scalar_one()
    return list(names), int(imports)


async def school_with_roll(registry: httpx.AsyncClient, admin: dict[str, str],
                           engine: AsyncEngine) -> tuple[str, tuple[list[str], int]]:
    """A school whose roll has five pupils."""
    urn = next_urn()
    await register_school(engine, urn)
    assert (await post_roster(registry, urn, roll(urn, 5), admin)).status_code == 200
    return urn, await roll_of(engine, urn)
