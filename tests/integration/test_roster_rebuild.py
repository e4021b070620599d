"""The roster index rebuilds in the background: matching goes on against the rolls as they
were, school edits apply at once, and the new rolls serve once built.

A rebuild is made observable by the cache's keyword-only `build` dependency: the real index
builder behind a gate the test opens, as a large roll's rebuild looks to the matcher.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.incidents import IncidentIn, IncidentReceived
from services.common.context import AppContext
from services.common.db import UnitOfWork
from services.common.metrics import refresh_gauges
from services.common.models import outbox
from services.common.settings import Settings
from services.matcher.domain import RosterIndex
from services.matcher.handlers import MatcherDeps, on_incident_received
from services.matcher.index import RosterCache, build_index
from services.matcher.metrics import observe_index
from services.matcher.models import pupils, schools
from services.matcher.records import ChildReport, Pupil
from services.matcher.registry import import_roster
from services.matcher.roster import ROSTER_HEADER
from tests.support.ids import next_la, next_tag, next_urn
from tests.support.incidents import incident_body
from tests.support.registry import pupil, seed

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
ON = date(2026, 11, 21)
BORN = date(2015, 5, 17)


class GatedBuild:
    """The real index builder, held at a gate once `hold()` is called."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False
        self._open = threading.Event()
        self._open.set()
        self._entered = threading.Event()

    def __call__(self, roster: list[Pupil], open_urns: frozenset[str]) -> RosterIndex:
        self.calls += 1
        self._entered.set()
        self._open.wait(timeout=120)  # a broken test fails instead of hanging its thread
        if self.failing:
            raise RuntimeError("the build broke")
        return build_index(roster, open_urns)

    def hold(self) -> None:
        self._open.clear()
        self._entered.clear()

    async def entered(self) -> None:
        """Return once a build has begun (it waits at the gate, if held)."""
        assert await asyncio.to_thread(self._entered.wait, 120)

    def release(self) -> None:
        self._open.set()


def family_name() -> str:
    """A family name no other test's pupil has (the session database is shared), nothing
    like the last one (tags in a row differ only at the end)."""
    digest = hashlib.blake2b(next_tag().encode(), digest_size=5).hexdigest()
    return "Q" + "".join("abcdefghijklmnop"[int(digit, 16)] for digit in digest)


async def school_with(settings: Settings, *families: str) -> str:
    """A new open school in a new LA whose roll holds one Zara per family name."""
    la, urn = next_la(), next_urn()
    await seed(settings, las=[la], school_rows=[
        {"urn": urn, "name": "Ash Grove Primary", "la_code": la, "status": "open"}],
        pupil_rows=[pupil(urn, "", "Zara", family, BORN.isoformat()) for family in families])
    return urn


async def replace_roll(engine: AsyncEngine, urn: str, *families: str) -> None:
    """Import a new roll for the school (the old roll's rows go), as the registry does."""
    lines = [",".join(ROSTER_HEADER)] + [
        f"{urn},,Zara,,{family},,{BORN.isoformat()},,,,C,," for family in families]
    await import_roster(urn, "\n".join(lines) + "\n", uow=UnitOfWork(engine),
                        imported_by="test", now=NOW)


async def edit_school(engine: AsyncEngine, urn: str, **values: str) -> None:
    """Change a school as an admin would, stamped after every school's last edit."""
    async with UnitOfWork(engine) as uow:
        last = (await uow.conn.execute(select(func.max(schools.c.updated_at)))).scalar_one()
        await uow.conn.execute(update(schools).where(schools.c.urn == urn).values(
            **values, updated_at=last + timedelta(seconds=1)))
        await uow.commit()


async def matched_urns(cache: RosterCache, family: str) -> set[str]:
    """The schools the cache's current registry matches a reported Zara to."""
    child = ChildReport(child_ref="0", given_name="Zara", family_name=family,
                        date_of_birth=BORN)
    decision = (await cache.get()).index.match(child, on_date=ON)
    return {candidate.pupil.urn for candidate in decision.matches}


@pytest.fixture
def build() -> GatedBuild:
    return GatedBuild()


@pytest.fixture
async def cache(matcher_engine: AsyncEngine, build: GatedBuild) -> AsyncIterator[RosterCache]:
    roster = RosterCache(matcher_engine, build=build, clock=lambda: NOW, wait_s=0)
    yield roster
    build.release()
    await roster.rebuilt()


async def staged_for(engine: AsyncEngine, incident_id: uuid.UUID) -> list[bytes]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(outbox.c.value).where(
            outbox.c.key == str(incident_id)))).scalars())


async def test_a_child_is_matched_against_the_old_roll_while_the_new_one_builds(
    settings: Settings, matcher_engine: AsyncEngine, cache: RosterCache, build: GatedBuild,
) -> None:
    leaver, joiner = family_name(), family_name()
    urn = await school_with(settings, leaver)
    deps = MatcherDeps(engine=matcher_engine, roster=cache, topic_prefix=settings.topic_prefix,
                       clock=lambda: NOW, published=lambda: None)

    async def consume(family: str) -> bytes:
        body = incident_body()
        body["children"][0].update(given_name="Zara", family_name=family,
                                   date_of_birth=BORN.isoformat(), school_hint=None, upn=None)
        incident_id = uuid.uuid4()
        event = IncidentReceived(incident_id=incident_id, received_at=NOW,
                                 incident=IncidentIn.model_validate(body),
                                 disclosure_fields=["occurred_at"])
        await on_incident_received(wrap(event), deps=deps)
        (value,) = await staged_for(matcher_engine, incident_id)
        return value

    assert b'"ChildMatched"' in await consume(leaver)  # the first build is waited for
    build.hold()
    await replace_roll(matcher_engine, urn, joiner)  # the leaver goes, the joiner comes
    first = await consume(leaver)  # starts the rebuild
    await build.entered()  # and the rebuild is under way, held at the gate
    during = await consume(leaver)
    for answer in (first, during):  # the roll as it was a moment ago
        assert b'"ChildMatched"' in answer and urn.encode() in answer
    assert b'"ChildMatched"' not in await consume(joiner)
    assert cache.status().rebuilding and cache.status().behind
    assert build.calls == 2  # one rebuild, however many matches come meanwhile

    build.release()
    await cache.rebuilt()
    assert b'"ChildMatched"' not in await consume(leaver)
    assert urn.encode() in await consume(joiner)
    assert not cache.status().behind and build.calls == 2


async def test_school_edits_apply_at_once_during_a_rebuild_and_a_closure_after_it(
    settings: Settings, matcher_engine: AsyncEngine, cache: RosterCache, build: GatedBuild,
) -> None:
    family, other = family_name(), family_name()
    urn = await school_with(settings, family)
    other_urn = await school_with(settings, other)
    assert await matched_urns(cache, family) == {urn}
    build.hold()
    await replace_roll(matcher_engine, other_urn, other)
    await edit_school(matcher_engine, urn, name="Rowan Academy")
    served = await cache.get()
    await build.entered()
    assert served.schools[urn].name == "Rowan Academy"  # at once, over the old index
    assert served.behind and cache.status().rebuilding
    build.release()
    await cache.rebuilt()

    await edit_school(matcher_engine, urn, name="Rowan Academy Trust")
    assert (await cache.get()).schools[urn].name == "Rowan Academy Trust"
    assert build.calls == 2  # an edit that changes no roll reuses the index

    await edit_school(matcher_engine, urn, status="closed")
    assert (await cache.get()).behind
    await cache.rebuilt()
    assert build.calls == 3
    assert await matched_urns(cache, family) == set()


async def test_a_new_school_without_a_roll_needs_no_rebuild(
    settings: Settings, cache: RosterCache, build: GatedBuild,
) -> None:
    await cache.get()
    before = build.calls
    la = next_la()
    await seed(settings, las=[la], school_rows=[
        {"urn": next_urn(), "name": "New Free School", "la_code": la, "status": "open"}],
        pupil_rows=[])
    registry = await cache.get()
    assert not registry.behind and build.calls == before


async def test_a_failed_rebuild_keeps_the_old_index_and_is_tried_again(
    settings: Settings, matcher_engine: AsyncEngine, cache: RosterCache, build: GatedBuild,
    caplog: pytest.LogCaptureFixture,
) -> None:
    leaver, joiner = family_name(), family_name()
    urn = await school_with(settings, leaver)
    assert await matched_urns(cache, leaver) == {urn}
    build.failing = True
    await replace_roll(matcher_engine, urn, joiner)
    caplog.set_level(logging.ERROR, logger="services.matcher.index")
    await cache.get()
    await cache.rebuilt()
    assert await matched_urns(cache, leaver) == {urn}  # the old index serves on
    status = cache.status()
    assert status.failures >= 1 and status.behind
    assert "rebuild failed" in caplog.text
    assert leaver not in caplog.text and "the build broke" not in caplog.text

    build.failing = False
    await cache.rebuilt()  # the next get() tries again
    await cache.rebuilt()
    assert await matched_urns(cache, joiner) == {urn}
    assert await matched_urns(cache, leaver) == set()


async def test_metrics_tell_the_index_age_and_a_rebuild_under_way(
    settings: Settings, matcher_engine: AsyncEngine, cache: RosterCache, build: GatedBuild,
) -> None:
    urn = await school_with(settings, family_name())
    ctx = AppContext(settings=settings, engine=matcher_engine, registry=CollectorRegistry(),
                     clock=lambda: NOW + timedelta(minutes=5))
    observe_index(ctx, cache)

    async def scrape() -> dict[str, float | None]:
        await refresh_gauges(ctx)
        return {name: ctx.registry.get_sample_value(f"daybreak_matcher_index_{name}")
                for name in ("age_seconds", "rebuilding", "behind", "pupils")}

    assert (await scrape())["pupils"] == 0  # nothing built yet
    await cache.get()
    built = await scrape()
    assert built["age_seconds"] == 300 and built["rebuilding"] == 0 and built["behind"] == 0
    assert (built["pupils"] or 0) >= 1
    build.hold()
    await replace_roll(matcher_engine, urn, family_name())
    await cache.get()
    await build.entered()
    during = await scrape()
    assert during["rebuilding"] == 1 and during["behind"] == 1
    build.release()
    await cache.rebuilt()
    assert (await scrape())["rebuilding"] == 0


async def test_a_rebuild_done_within_the_wait_answers_at_once(
    settings: Settings, matcher_engine: AsyncEngine,
) -> None:
    leaver, joiner = family_name(), family_name()
    urn = await school_with(settings, leaver)
    cache = RosterCache(matcher_engine, wait_s=600)  # a small roll: rebuilt well within it
    assert await matched_urns(cache, leaver) == {urn}
    await replace_roll(matcher_engine, urn, joiner)
    assert await matched_urns(cache, joiner) == {urn}


LARGE_ROLL = 10_000  # rows: a real rebuild of seconds, no gate


async def test_matching_answers_throughout_the_real_rebuild_of_a_large_roll(
    settings: Settings, matcher_engine: AsyncEngine,
) -> None:
    family = family_name()
    urn = await school_with(settings, family)
    big = await school_with(settings)
    cache = RosterCache(matcher_engine, clock=lambda: NOW, wait_s=0)  # the real builder
    assert await matched_urns(cache, family) == {urn}
    lines = [",".join(ROSTER_HEADER)] + [
        f"{big},,Omar,,{family_name()},,{date(2011, 9, 1) + timedelta(days=i % 1400)},,,,C,,"
        for i in range(LARGE_ROLL)]
    await import_roster(big, "\n".join(lines) + "\n", uow=UnitOfWork(matcher_engine),
                        imported_by="test", now=NOW)
    try:
        await cache.get()  # starts the rebuild and does not wait for it
        answered = 0
        while True:
            urns = await matched_urns(cache, family)
            if not cache.status().rebuilding:
                break
            assert urns == {urn}  # the old index answers, in full, while the new one builds
            answered += 1
        assert answered >= 3
        assert cache.status().pupils >= LARGE_ROLL and not cache.status().behind
    finally:  # the session's other caches index every roll: keep them small
        async with UnitOfWork(matcher_engine) as uow:
            await uow.conn.execute(delete(pupils).where(pupils.c.urn == big))
            await uow.commit()


async def test_the_watch_rebuilds_an_imported_roll_before_any_child_asks(
    settings: Settings, matcher_engine: AsyncEngine, cache: RosterCache, build: GatedBuild,
) -> None:
    leaver, joiner = family_name(), family_name()
    urn = await school_with(settings, leaver)
    watch = asyncio.create_task(cache.watch(0.05))
    try:
        async with asyncio.timeout(60):  # the first build, with nobody matching
            while cache.status().pupils == 0:
                await asyncio.sleep(0.05)
        first = build.calls
        await replace_roll(matcher_engine, urn, joiner)
        async with asyncio.timeout(60):  # the import is noticed and built in the background
            while build.calls == first or cache.status().rebuilding or cache.status().behind:
                await asyncio.sleep(0.05)
    finally:
        watch.cancel()
    calls = build.calls
    # what the cache says it serves, beside the rolls now: failed once in CI (set() for the
    # joiner, after a rebuild, with the index not behind), not reproduced since
    served = cache.status(), cache._current.version if cache._current else None
    now_version = await cache._version()
    assert await matched_urns(cache, joiner) == {urn}, (served, now_version, calls, first)
    assert build.calls == calls  # the child was matched against the index already built
