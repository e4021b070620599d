"""The roster index the matcher matches against: school edits apply at once, a changed roll
or a closed school after a background rebuild that never stops matching."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.context import utc_now
from services.common.school_calendar import SchoolCalendar
from services.common.sealing import sealing_of
from services.matcher.calendars import load_calendars
from services.matcher.deadlines import DEFAULT_DAY_STARTS
from services.matcher.domain import RosterIndex
from services.matcher.models import local_authorities, pupils, roster_imports, schools
from services.matcher.records import Pupil
from services.matcher.roll import opened_roll

log = logging.getLogger(__name__)
IndexBuilder = Callable[[list[Pupil], frozenset[str]], RosterIndex]
# a rebuild that ends within this many seconds of its start is waited for, so a small roll
# behaves as if rebuilt synchronously; a large one is not waited for beyond it
REBUILD_WAIT_S = 2.0
ROWS_PER_READ = 10_000  # rows per fetch: the event loop keeps answering between them


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
    force_code: str = ""  # the police force whose area covers the school's LA, if known


@dataclass(frozen=True)
class Registry:
    """An index over every roll plus the schools, as of one roster and school version.

    `schools` and `version` are always as of the last look; `index` may be older while a
    rebuild runs: `roster_id` (the newest roster import it holds) and `open_urns` say what
    it was built from, `behind` that it lags a roll import or a school's closure."""

    index: RosterIndex
    schools: dict[str, SchoolInfo]
    version: tuple[object, ...]
    open_urns: frozenset[str] = frozenset()  # the schools the index matches against
    roster_id: object = None
    rolls: frozenset[str] = frozenset()  # the schools with rows in the index
    read_at: datetime | None = None  # when the index's rolls were read
    behind: bool = False
    # each force's area as the schools in it, worked out once per registry (area_urns)
    _areas: dict[tuple[str, str], frozenset[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def area_urns(self, force_code: str, default_la: str | None = None) -> frozenset[str]:
        """The schools in a reporting force's area: those of the LAs the force covers and of
        its default LA (empty when the registry knows neither: the prior is then national).
        One frozenset per force, so the index works out its prior once (domain.py)."""
        key = (force_code, default_la or "")
        area = self._areas.get(key)
        if area is None:
            area = frozenset(urn for urn, info in self.schools.items()
                             if (force_code and info.force_code == force_code)
                             or (default_la and info.la_code == default_la))
            self._areas[key] = area
        return area

    def with_schools(self, schools: dict[str, SchoolInfo], version: tuple[object, ...]
                     ) -> Registry:
        """The same index with the schools as of `version`, noting whether it lags them: a
        roll imported since, or a school with rows in it closed or reopened (a new school,
        or one with no roll, changes nothing it holds)."""
        moved = (self.open_urns ^ _open_urns(schools)) & self.rolls
        behind = self.roster_id != version[0] or bool(moved)
        return dataclasses.replace(self, schools=schools, version=version, behind=behind)


def build_index(roster: list[Pupil], open_urns: frozenset[str]) -> RosterIndex:
    """The production index builder."""
    return RosterIndex(roster, open_urns=open_urns)


@dataclass(frozen=True)
class IndexStatus:
    """What /metrics says of the served index."""

    pupils: int
    read_at: datetime | None
    rebuilding: bool
    behind: bool
    failures: int


def keep_out_of_collections() -> None:
    """Move everything alive now, a new index above all, out of the cyclic collector's reach.

    An index is millions of long-lived tuples and arrays; a full collection walks them all
    (seconds at a million pupils) and stalls whichever match it lands in. They hold no
    reference cycles, so reference counting still frees an index once it is dropped.
    """
    gc.freeze()


class RosterCache:
    """Holds the current Registry; school edits apply at once, rolls after a rebuild.

    The first build is waited for. After that, a roll import or a school's closure starts one
    background rebuild (never two at once) and matching goes on against the index already
    built: a child matched meanwhile is matched against the rolls as they were a moment ago
    (when the served index read them), with every school's details as of now. That is the
    right trade because a roll is itself a copy of the school's MIS as of its last export,
    so seconds or a minute more change nothing a school would notice, whereas stopping every
    match for the rebuild (a minute and more at a million pupils) delays every child, and
    repeats with every school's import. A pupil removed by the import can still be matched
    to the school that had them a moment ago, which knew them; a pupil added is not found
    yet and goes to the LA as unmatched, not to a wrong school; a school just closed still
    matches, and the notifier, whose copy of the registry knows it closed, hands those
    children to the LA. The new index replaces the old in one assignment, between matches.
    A failed rebuild is logged and the old index serves on; the next get() tries again.
    """

    def __init__(
        self, engine: AsyncEngine, *, build: IndexBuilder = build_index,
        clock: Callable[[], datetime] = utc_now, wait_s: float = REBUILD_WAIT_S,
    ) -> None:
        self.engine = engine
        self._build = build
        self._clock = clock
        self._wait_s = wait_s
        self._current: Registry | None = None
        self._lock = asyncio.Lock()
        self._rebuild: asyncio.Task[None] | None = None
        self._rebuild_started = 0.0
        self._failures = 0

    async def get(self) -> Registry:
        """The registry as of now; its index as of the last finished build."""
        async with self._lock:
            registry = await self._refresh()
        rebuild = self._rebuild
        if registry.behind and rebuild is not None:
            left = self._rebuild_started + self._wait_s - asyncio.get_running_loop().time()
            if left > 0:
                await asyncio.wait({rebuild}, timeout=left)
        return self._current or registry

    async def watch(self, interval_s: float) -> None:
        """Look for a changed roll or school every `interval_s` (first at once), so a roll
        imported anywhere (the registry API, `daybreak roster import`, another copy of the
        matcher) is rebuilt in the background before the next child needs it, not by the
        child that finds it changed. A change is acted on once it has held for one look: a
        burst of imports (an LA loading all its schools) costs one rebuild after it, not one
        per look during it; a child arriving meanwhile starts one itself, as before. The first
        index is built by a look only once some roll exists. One small query a look; runs
        until cancelled."""
        last: tuple[object, ...] | None = None
        while True:
            try:
                version = await self._version()
                current = self._current
                settled = version == last
                # the first index only once a roll exists and has settled: an index built
                # before the rolls arrive would be served, stale, while they are rebuilt in,
                # where a first child waits for a first build (under the lock) of the rolls
                if settled and (version != current.version if current is not None
                                else version[0] is not None):
                    await self.get()
                last = version
            except Exception as exc:  # the database away: the next child or look tries again
                log.warning("roster check failed", extra={"exc_type": type(exc).__name__})
            await asyncio.sleep(interval_s)

    async def rebuilt(self) -> Registry:
        """The registry once the rebuild under way, if any, has finished."""
        if self._rebuild is not None:
            await asyncio.wait({self._rebuild})
        return await self.get()

    def status(self) -> IndexStatus:
        """The served index's size and age, and whether a rebuild runs or is owed."""
        current = self._current
        return IndexStatus(
            pupils=len(current.index) if current else 0,
            read_at=current.read_at if current else None, rebuilding=self._rebuild is not None,
            behind=current.behind if current else False, failures=self._failures)

    async def _refresh(self) -> Registry:
        """Bring schools up to date now and start a rebuild if the index lags (under the lock)."""
        version = await self._version()
        if self._current is None or self._current.version != version:
            async with self.engine.connect() as conn:
                infos = await _load_schools(conn)
            # read again after the awaits: a rebuild may have swapped its index in meanwhile
            self._current = (await self._read_and_build(version, infos) if self._current is None
                             else self._current.with_schools(infos, version))
        current = self._current
        if current.behind and self._rebuild is None:
            self._rebuild_started = asyncio.get_running_loop().time()
            self._rebuild = asyncio.create_task(self._rebuild_index(current))
        return current

    async def _rebuild_index(self, wanted: Registry) -> None:
        """Build the index `wanted` lags, then swap it in with the schools as they are then."""
        try:
            built = await self._read_and_build(wanted.version, wanted.schools)
        except Exception as exc:
            self._failures += 1
            # the type only: a message may quote a row
            log.error("roster index rebuild failed; matching goes on against the previous one",
                      extra={"exc_type": type(exc).__name__})
            return
        finally:
            self._rebuild = None
        latest = self._current or built
        self._current = built.with_schools(latest.schools, latest.version)

    async def _read_and_build(self, version: tuple[object, ...],
                              infos: dict[str, SchoolInfo]) -> Registry:
        """Read every roll (after `version` was read, so never older than it) and index it."""
        open_urns = _open_urns(infos)
        read_at = self._clock()
        roster: list[Pupil] = []
        sealing, unopened = sealing_of(self.engine), 0
        async with self.engine.connect() as conn:
            result = await conn.stream(select(pupils).execution_options(yield_per=ROWS_PER_READ))
            async for rows in result.partitions():
                # each batch's sealed rows opened in a worker thread (CPU work)
                opened, failed = await asyncio.to_thread(opened_roll, sealing, rows)
                roster.extend(opened)
                unopened += failed
        if unopened:  # a count only: never a row's content
            log.error("roll rows that do not open were left out of the index",
                      extra={"rows": unopened})
        # building a large index is CPU work: keep the event loop answering meanwhile
        index = await asyncio.to_thread(self._build, roster, open_urns)
        keep_out_of_collections()
        return Registry(index=index, schools=infos, version=version, open_urns=open_urns,
                        roster_id=version[0], rolls=frozenset(p.urn for p in roster),
                        read_at=read_at)

    async def _version(self) -> tuple[object, ...]:
        # one round trip per message: a roll or school edited a moment ago must count
        query = select(
            select(func.max(roster_imports.c.id)).scalar_subquery(),
            select(func.max(schools.c.updated_at)).scalar_subquery(),
            select(func.count()).select_from(schools).scalar_subquery(),
            # an LA's force decides which schools are near a report (Registry.area_urns)
            select(func.max(local_authorities.c.updated_at)).scalar_subquery(),
        )
        async with self.engine.connect() as conn:
            return tuple((await conn.execute(query)).one())


def _open_urns(infos: dict[str, SchoolInfo]) -> frozenset[str]:
    return frozenset(urn for urn, info in infos.items() if info.status != "closed")


async def _load_schools(conn: AsyncConnection) -> dict[str, SchoolInfo]:
    """Every school with its effective calendar: an LA's term dates decide its schools'
    review deadlines."""
    school_rows = (await conn.execute(select(schools))).all()
    calendars = await load_calendars(conn)
    forces = {r.la_code: r.force_code for r in await conn.execute(select(
        local_authorities.c.la_code, local_authorities.c.force_code).where(
        local_authorities.c.force_code.is_not(None)))}
    return {
        r.urn: SchoolInfo(r.urn, r.name, r.la_code, r.postcode or "", r.status,
                          r.day_starts_at, calendars.calendar(r.urn, r.la_code),
                          forces.get(r.la_code, ""))
        for r in school_rows
    }
