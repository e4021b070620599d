"""The roster index the matcher matches against, rebuilt when a roll or a school changes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.school_calendar import SchoolCalendar
from services.matcher.calendars import load_calendars
from services.matcher.deadlines import DEFAULT_DAY_STARTS
from services.matcher.domain import RosterIndex
from services.matcher.models import pupils, roster_imports, schools
from services.matcher.records import Pupil


@dataclass(frozen=True)
class SchoolInfo:
    """What the matcher needs to know of a school besides its roll (its school days decide
    a review's deadline)."""

    urn: str
    name: str
    la_code: str
    postcode: str
    status: str
    day_starts_at: time = DEFAULT_DAY_STARTS
    calendar: SchoolCalendar = field(default_factory=SchoolCalendar)


@dataclass(frozen=True)
class Registry:
    """An index over every roll plus the schools, as of one roster and school version."""

    index: RosterIndex
    schools: dict[str, SchoolInfo]
    version: tuple[object, ...]
    open_urns: frozenset[str] = frozenset()  # the schools the index matches against


class RosterCache:
    """Holds the current Registry; callers get a fresh one after any import or school edit."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._current: Registry | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Registry:
        """The registry as of now, rebuilding it if the data changed since the last build."""
        async with self._lock:
            version = await self._version()
            if self._current is None or self._current.version != version:
                self._current = await self._build(version)
            return self._current

    async def _version(self) -> tuple[object, ...]:
        # one round trip per message: a roll or school edited a moment ago must count
        query = select(
            select(func.max(roster_imports.c.id)).scalar_subquery(),
            select(func.max(schools.c.updated_at)).scalar_subquery(),
            select(func.count()).select_from(schools).scalar_subquery(),
        )
        async with self.engine.connect() as conn:
            return tuple((await conn.execute(query)).one())

    async def _build(self, version: tuple[object, ...]) -> Registry:
        previous = self._current
        async with self.engine.connect() as conn:
            school_rows = (await conn.execute(select(schools))).all()
            # the effective calendars: an LA's term dates decide its schools' review deadlines
            calendars = await load_calendars(conn)
            infos = {
                r.urn: SchoolInfo(r.urn, r.name, r.la_code, r.postcode or "", r.status,
                                  r.day_starts_at, calendars.calendar(r.urn, r.la_code))
                for r in school_rows
            }
            open_urns = frozenset(urn for urn, info in infos.items() if info.status != "closed")
            # a school edited or a calendar imported, with the rolls as they were: the index
            # (the expensive part) still holds
            if (previous is not None and previous.version[0] == version[0]
                    and previous.open_urns == open_urns):
                return Registry(index=previous.index, schools=infos, version=version,
                                open_urns=open_urns)
            pupil_rows = (await conn.execute(select(pupils))).all()
        roster = [
            Pupil(
                urn=r.urn, upn=r.upn, given_name=r.given_name, preferred_name=r.preferred_name,
                family_name=r.family_name, former_family_name=r.former_family_name,
                date_of_birth=r.date_of_birth, gender=r.gender, address_line1=r.address_line1,
                postcode=r.postcode, enrolment_status=r.enrolment_status,
                on_roll_from=r.on_roll_from, on_roll_to=r.on_roll_to,
            )
            for r in pupil_rows
        ]
        # building a large index is CPU work: keep the event loop answering meanwhile
        index = await asyncio.to_thread(RosterIndex, roster, open_urns=open_urns)
        return Registry(index=index, schools=infos, version=version, open_urns=open_urns)
