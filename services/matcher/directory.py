"""The registry's changes on `registry.v1`: the whole current state of each school, LA and
calendar a transaction touched, staged in the matcher's outbox in that same transaction. A
school's calendar is announced as it takes effect: its LA's term dates or its own, with its
overrides on top, so the notifier's copy needs no rule of its own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import topics
from schemas.directory import (
    CalendarDay,
    LocalAuthorityChanged,
    SchoolCalendarChanged,
    SchoolChanged,
    registry_key,
)
from schemas.envelope import Envelope, wrap
from services.common.db import any_of
from services.common.outbox import add_all_to_outbox
from services.matcher.calendars import load_calendars
from services.matcher.decisions import SOURCE
from services.matcher.models import local_authorities, schools

Staged = tuple[str, str, Envelope[Any]]


async def announce(
    conn: AsyncConnection, *, topic_prefix: str, now: datetime,
    urns: Iterable[str] = (), la_codes: Iterable[str] = (), calendars: Iterable[str] = (),
) -> int:
    """Stage the current state of the named schools, LAs and calendars; returns how many."""
    topic = f"{topic_prefix}{topics.REGISTRY}"
    staged = [*await _las(conn, sorted(set(la_codes)), topic, now),
              *await _schools(conn, sorted(set(urns)), topic, now),
              *await _calendars(conn, sorted(set(calendars)), topic, now)]
    await add_all_to_outbox(conn, source=f"{topic_prefix}{SOURCE}", staged=staged)
    return len(staged)


async def announce_calendars(conn: AsyncConnection, urns: Sequence[str], *, topic_prefix: str,
                             now: datetime) -> int:
    """Stage the schools' effective calendars after a change to them, touching the schools'
    updated_at: the matcher's registry snapshot (services/matcher/index.py) notices a change
    by it, and a calendar decides its schools' review deadlines."""
    if urns:
        await conn.execute(update(schools).where(schools.c.urn == any_of(urns))
                           .values(updated_at=now))
    return await announce(conn, topic_prefix=topic_prefix, now=now, calendars=urns)


async def announce_everything(conn: AsyncConnection, *, topic_prefix: str, now: datetime) -> int:
    """Stage the whole registry (after an upgrade, or to rebuild a lost topic)."""
    las = (await conn.execute(select(local_authorities.c.la_code))).scalars().all()
    urns = (await conn.execute(select(schools.c.urn))).scalars().all()
    return await announce(conn, topic_prefix=topic_prefix, now=now, la_codes=las, urns=urns,
                          calendars=urns)


async def _las(conn: AsyncConnection, codes: list[str], topic: str, now: datetime
               ) -> list[Staged]:
    if not codes:
        return []
    rows = await conn.execute(select(local_authorities).where(
        local_authorities.c.la_code == any_of(codes)).order_by(local_authorities.c.la_code))
    return [(topic, registry_key("la", r.la_code), wrap(LocalAuthorityChanged(
        la_code=r.la_code, name=r.name, contacts=r.contacts,
        escalation_before_minutes=r.escalation_before_minutes,
        attendance_prompt_at=r.attendance_prompt_at, attendance_la_at=r.attendance_la_at),
        occurred_at=now)) for r in rows]


async def _schools(conn: AsyncConnection, urns: list[str], topic: str, now: datetime
                   ) -> list[Staged]:
    if not urns:
        return []
    rows = await conn.execute(select(schools).where(schools.c.urn == any_of(urns))
                              .order_by(schools.c.urn))
    return [(topic, registry_key("school", r.urn), wrap(SchoolChanged(
        urn=r.urn, name=r.name, la_code=r.la_code, status=r.status,
        participates=r.participates, day_starts_at=r.day_starts_at, contacts=r.contacts,
        webhook=r.webhook or None, deputy_after_minutes=r.deputy_after_minutes,
        la_after_minutes=r.la_after_minutes), occurred_at=now)) for r in rows]


async def _calendars(conn: AsyncConnection, urns: list[str], topic: str, now: datetime
                     ) -> list[Staged]:
    """Each school's effective calendar (its LA's term dates or its own, overrides on top)."""
    las: dict[str, str] = {}
    if urns:
        las = {r.urn: r.la_code for r in await conn.execute(
            select(schools.c.urn, schools.c.la_code).where(schools.c.urn == any_of(urns)))}
    book = await load_calendars(conn, urns=urns, la_codes=sorted(set(las.values())))
    return [(topic, registry_key("calendar", urn), wrap(SchoolCalendarChanged(
        urn=urn, days=[CalendarDay(day=day, kind=kind)
                       for day, kind in book.days(urn, las.get(urn, ""))]),
        occurred_at=now)) for urn in urns]
