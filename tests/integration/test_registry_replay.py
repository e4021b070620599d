"""The notifier's copy of the registry is fed by registry.v1 alone and rebuilt from it.

The matcher's registry API announces every change through its outbox; the notifier's own
consumer group keeps its copy (each school's calendar as it takes effect: its LA's term dates,
its overrides on top); emptying the copy and replaying the compacted topic from the start gives
back exactly the registry's current state, edits included.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas import topics
from services.common.settings import Settings
from services.matcher import models as matcher
from services.matcher.calendars import load_calendars
from services.matcher.main import build_app as build_matcher
from services.notifier import models as notifier
from services.notifier.directory import rebuild
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.support.api import running
from tests.support.ids import next_la, next_urn
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
SCHOOL_COLUMNS = ("urn", "name", "la_code", "status", "participates", "day_starts_at",
                  "contacts", "webhook", "deputy_after_minutes", "la_after_minutes")


async def registry_state(engine: AsyncEngine, urns: list[str], la: str,
                         *, schools: Any, las: Any, days: Any) -> dict[str, Any]:
    """The schools, LA and calendar days of one side, as comparable plain values."""
    async with engine.connect() as conn:
        school_rows = (await conn.execute(
            select(*(schools.c[c] for c in SCHOOL_COLUMNS)).where(schools.c.urn.in_(urns))
            .order_by(schools.c.urn))).all()
        la_row = (await conn.execute(select(las.c.name, las.c.contacts).where(
            las.c.la_code == la))).first()
        day_rows = (await conn.execute(select(days.c.urn, days.c.day, days.c.kind).where(
            days.c.urn.in_(urns)).order_by(days.c.urn, days.c.day))).all()
    return {"schools": [tuple(r) for r in school_rows],
            "la": None if la_row is None else tuple(la_row),
            "days": [tuple(r) for r in day_rows]}


async def matcher_side(engine: AsyncEngine, urns: list[str], la: str) -> Any:
    """The registry's state, each school's days as they take effect (its LA's term dates
    with its overrides on top)."""
    state = await registry_state(engine, urns, la, schools=matcher.schools,
                                 las=matcher.local_authorities, days=matcher.school_calendar_days)
    async with engine.connect() as conn:
        book = await load_calendars(conn, urns=urns, la_codes=[la])
    return state | {"days": [(urn, day, kind) for urn in sorted(urns)
                             for day, kind in book.days(urn, la)]}


def notifier_side(engine: AsyncEngine, urns: list[str], la: str) -> Any:
    return registry_state(engine, urns, la, schools=notifier.schools,
                          las=notifier.local_authorities, days=notifier.school_calendar_days)


async def until_equal(engine: AsyncEngine, urns: list[str], la: str) -> dict[str, Any]:
    want = await matcher_side(engine, urns, la)
    for _ in range(300):
        got = await notifier_side(engine, urns, la)
        if got == want:
            return got
        await asyncio.sleep(0.1)
    assert got == want
    return got


async def test_the_copy_follows_the_registry_and_a_replay_rebuilds_it(
    settings: Settings, engine: AsyncEngine, notifier_engine: AsyncEngine
) -> None:
    la, urns = next_la(), [next_urn(), next_urn()]
    admin = bearer(person("admin"))
    school = {"name": "Replay Primary", "la_code": la, "participates": True,
              "day_starts_at": "08:40",
              "contacts": [{"role": "dsl", "name": "D", "email": "dsl@replay.test"}],
              "webhook": {"url": "https://mis.replay.test/hook", "secret": "s" * 32}}
    async with running(build_matcher(settings)) as api, \
            running(build_notifier(NotifierSettings(**settings.model_dump()))):
        assert (await api.put(f"/v1/local-authorities/{la}", headers=admin, json={
            "name": "Replay LA", "contacts": [
                {"role": "safeguarding", "name": "S", "email": "mash@replay.test"}]})
                ).status_code == 201
        for urn in urns:
            assert (await api.put(f"/v1/schools/{urn}", headers=admin,
                                  json=school)).status_code == 201
        calendar = f"urn,date,kind\n{urns[0]},2026-12-21,closed\n{urns[0]},2026-12-22,closed\n"
        assert (await api.put(f"/v1/schools/{urns[0]}/calendar", content=calendar.encode(),
                              headers=admin | {"Content-Type": "text/csv"})).status_code == 200
        term_dates = "date,kind\n2026-12-22,open\n2026-12-23,closed\n"  # the LA's, for both
        assert (await api.put(f"/v1/local-authorities/{la}/calendar", content=term_dates.encode(),
                              headers=admin | {"Content-Type": "text/csv"})).status_code == 200
        edited = school | {"participates": False, "day_starts_at": "09:00"}
        assert (await api.put(f"/v1/schools/{urns[1]}", headers=admin,
                              json=edited)).status_code == 200
        live = await until_equal(engine, urns, la)
    assert live["schools"][1][4] is False
    assert [(day.day, kind) for urn, day, kind in live["days"] if urn == urns[0]] == [
        (21, "closed"), (22, "closed"), (23, "closed")]  # its override wins on the 22nd
    assert len(live["days"]) == 5
    assert live["schools"][0][7]["secret"] == "s" * 32  # the notifier signs its webhooks

    async with notifier_engine.begin() as conn:  # the copy is lost
        for table in (notifier.school_calendar_days, notifier.schools):
            await conn.execute(delete(table).where(table.c.urn.in_(urns)))
        await conn.execute(delete(notifier.local_authorities).where(
            notifier.local_authorities.c.la_code == la))
    assert (await notifier_side(engine, urns, la))["schools"] == []

    applied = await rebuild(notifier_engine, kafka=settings.kafka(),
                            topic=settings.topic(topics.REGISTRY))
    assert applied >= 1 + len(urns) + 1  # at least the LA, each school, the calendar
    assert await notifier_side(engine, urns, la) == live
