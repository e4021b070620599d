"""The registry's readiness: every configuration that would leave a reported child with nobody
told (an LA nobody answers for, a school whose notifications reach nobody, a calendar that
sends them to a DSL on holiday)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import any_of
from services.common.doctor import ReadinessProblem
from services.common.local_time import LONDON
from services.matcher.calendars import load_calendars
from services.matcher.models import local_authorities, school_calendar_days, schools

# every code this module reports, in the order an entity's problems are listed
LA_CODES = ("la_no_safeguarding_contact", "la_no_duty_manager_contact",
            "la_no_term_dates_next_year")
SCHOOL_CODES = ("school_la_missing", "school_no_dsl_contact", "school_no_deputy_dsl_contact",
                "school_calendar_bare_default", "school_no_holiday_cover")
CODES = LA_CODES + SCHOOL_CODES
HOLIDAYS_WITHIN = timedelta(days=365)  # a calendar with no holiday in a year is the bare default
COVER_WITHIN = timedelta(days=14)  # a holiday this close needs somebody to cover it
TERM_DATES_DUE_MONTH = 6  # from 1 June an LA's next academic year must be known
_NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True, slots=True)
class LaFacts:
    """What readiness needs of a local authority."""

    la_code: str
    name: str
    roles: frozenset[str]
    term_dates: frozenset[date] = frozenset()  # every day its term dates list
    followed: bool = False  # an open participating school has no term dates of its own


@dataclass(frozen=True, slots=True)
class SchoolFacts:
    """What readiness needs of a school."""

    urn: str
    name: str
    la_code: str
    participates: bool
    status: str
    roles: frozenset[str]
    la_registered: bool
    first_holiday: date | None = None  # its effective calendar's next school-holiday day


def roles_of(contacts: Iterable[Mapping[str, Any]] | None) -> frozenset[str]:
    """The roles a contact list covers."""
    return frozenset(str(c.get("role", "")) for c in contacts or () if c.get("email"))


def _label(name: str) -> str:
    # a name from a GIAS file may hold a line break: each problem stays one line
    return _NOT_PRINTABLE.sub(" ", name).strip()


def next_academic_year(today: date) -> tuple[date, date] | None:
    """From 1 June to 31 August, the academic year that starts that September (1 September to
    31 July); None while a year is under way."""
    if not TERM_DATES_DUE_MONTH <= today.month < 9:
        return None
    return date(today.year, 9, 1), date(today.year + 1, 7, 31)


def la_problems(la: LaFacts, *, today: date) -> list[ReadinessProblem]:
    """An LA's own problems: nobody for its children on no roll, nobody to escalate to, and
    from 1 June no term dates for the next year when a school follows its dates."""
    subject, name = f"la:{la.la_code}", _label(la.name)
    found = []
    if "safeguarding" not in la.roles:
        found.append(ReadinessProblem(
            "la_no_safeguarding_contact", subject,
            f"{name} has no safeguarding contact: children on no roll and items addressed "
            "to the LA reach nobody"))
    if "duty_manager" not in la.roles:
        found.append(ReadinessProblem(
            "la_no_duty_manager_contact", subject,
            f"{name} has no duty_manager contact: nobody is called when an item nears its "
            "deadline"))
    year = next_academic_year(today)
    if year is not None and la.followed and not any(
            year[0] <= day <= year[1] for day in la.term_dates):
        found.append(ReadinessProblem(
            "la_no_term_dates_next_year", subject,
            f"{name} has no term dates for {year[0].year}-{year[1]:%y} (1 September to 31 "
            f"July): from September its schools without their own fall back to the bare "
            f"default (PUT /v1/local-authorities/{la.la_code}/calendar)"))
    return found


def school_problems(school: SchoolFacts, *, today: date) -> list[ReadinessProblem]:
    """An open school's problems: its LA unknown; taking part with no DSL or no deputy, with no
    holiday in its calendar for a year, or with a holiday near and nobody to cover it (its
    `first_holiday` is the first from `today`)."""
    if school.status == "closed":
        return []
    subject, name = f"school:{school.urn}", _label(school.name)
    found = []
    if not school.la_registered:
        # a non-participating school's children go to its LA too, so every open school counts
        found.append(ReadinessProblem(
            "school_la_missing", subject,
            f"{name} names LA {school.la_code}, which is not in the registry: what reaches "
            "the LA about its children reaches nobody"))
    if not school.participates:
        return found
    if "dsl" not in school.roles:
        found.append(ReadinessProblem(
            "school_no_dsl_contact", subject,
            f"{name} takes part but has no DSL contact: its notifications reach nobody"))
    if "deputy_dsl" not in school.roles:
        found.append(ReadinessProblem(
            "school_no_deputy_dsl_contact", subject,
            f"{name} takes part but has no deputy_dsl contact: an unacknowledged "
            "notification cannot escalate to a deputy"))
    holiday = school.first_holiday
    if holiday is None or holiday > today + HOLIDAYS_WITHIN:
        found.append(ReadinessProblem(
            "school_calendar_bare_default", subject,
            f"{name} takes part but its calendar has no school holiday in the next 12 months: "
            f"in the holidays its notifications would wait for a DSL who is away (import LA "
            f"{school.la_code}'s term dates or the school's own)"))
    elif holiday <= today + COVER_WITHIN and "holiday_cover" not in school.roles:
        found.append(ReadinessProblem(
            "school_no_holiday_cover", subject,
            f"{name} takes part, its holiday begins {holiday:%A} {holiday.day} {holiday:%B} "
            "and it has no holiday_cover contact: a child reported then waits for the DSL's "
            "return"))
    return found


async def registry_problems(conn: AsyncConnection, *, now: datetime) -> list[ReadinessProblem]:
    """Every LA's problems (by code), then every school's (by URN): one line each, as of `now`
    (the calendar checks look ahead from that day in England)."""
    return [*await la_readiness(conn, now=now), *await school_readiness(conn, now=now)]


async def la_readiness(conn: AsyncConnection, la_codes: Sequence[str] | None = None, *,
                       now: datetime) -> list[ReadinessProblem]:
    """The problems of the named LAs (every LA when None), by code."""
    query = select(local_authorities.c.la_code, local_authorities.c.name,
                   local_authorities.c.contacts).order_by(local_authorities.c.la_code)
    if la_codes is not None:
        query = query.where(local_authorities.c.la_code == any_of(la_codes))
    rows = (await conn.execute(query)).all()
    codes = [r.la_code for r in rows]
    book = await load_calendars(conn, urns=(), la_codes=codes)
    s, own = schools.c, school_calendar_days.c
    followed = set((await conn.execute(select(s.la_code).distinct().where(
        s.la_code == any_of(codes), s.status != "closed", s.participates,
        ~exists().where(own.urn == s.urn, own.source == "term")))).scalars())
    today = now.astimezone(LONDON).date()
    return [p for r in rows for p in la_problems(LaFacts(
        r.la_code, r.name, roles_of(r.contacts),
        frozenset(day for day, _ in book.la_days.get(r.la_code, ())),
        r.la_code in followed), today=today)]


async def school_readiness(conn: AsyncConnection, urns: Sequence[str] | None = None, *,
                           now: datetime) -> list[ReadinessProblem]:
    """The problems of the named schools (every school when None), by URN."""
    s = schools.c
    query = (select(s.urn, s.name, s.la_code, s.participates, s.status, s.contacts,
                    local_authorities.c.la_code.is_not(None).label("la_registered"))
             .select_from(schools.outerjoin(
                 local_authorities, local_authorities.c.la_code == s.la_code))
             .where(s.status != "closed").order_by(s.urn))
    if urns is not None:
        query = query.where(s.urn == any_of(urns))
    rows = (await conn.execute(query)).all()
    book = await load_calendars(conn, urns=urns, la_codes=None if urns is None else sorted(
        {r.la_code for r in rows}))
    today = now.astimezone(LONDON).date()
    return [p for r in rows for p in school_problems(SchoolFacts(
        r.urn, r.name, r.la_code, r.participates, r.status, roles_of(r.contacts),
        r.la_registered, book.first_holiday(r.urn, r.la_code, today)), today=today)]


async def default_la_problems(
    conn: AsyncConnection, defaults: Mapping[str, str]
) -> list[ReadinessProblem]:
    """Each force whose default LA the registry (`conn`: the matcher's) does not hold: its
    children whose LA the report does not tell would go to an LA nobody answers for."""
    known = set((await conn.execute(select(local_authorities.c.la_code))).scalars())
    return [ReadinessProblem(
        "force_default_la_unknown", f"force:{force}",
        f"default local authority {la} is not in the registry: register it (PUT "
        f"/v1/local-authorities/{la}) or name another")
        for force, la in sorted(defaults.items()) if la not in known]
