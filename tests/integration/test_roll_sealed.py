"""The school rolls sealed at rest (services/matcher/roll.py): no name, birth date or UPN in
the clear after an import, matching and UPN lookups as before, through a reseal under a new
roll key, and crypto-shredding of the monthly keys leaves the roll readable."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.context import utc_now
from services.common.crypto import KeyShredded, SealError
from services.common.db import UnitOfWork, service_engine
from services.common.retention import shred_expired_keys
from services.common.sealing import NO_KEYS, sealing_of
from services.common.settings import Settings
from services.matcher.index import RosterCache
from services.matcher.models import pupils
from services.matcher.records import ChildReport
from services.matcher.registry import import_roster
from services.matcher.roll import opened_pupil, opened_roll, reseal_roll, upn_is
from tests.support.ids import next_serial, next_urn
from tests.support.keys import Keystore
from tests.support.registry import opened_roll as roll_of
from tests.support.registry import register_school
from tests.support.registry_files import pupil_row, roster_csv, upn

pytestmark = pytest.mark.integration
IMPORTED = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NEXT_YEAR = datetime(2027, 1, 6, 8, 0, tzinfo=UTC)
ON = date(2026, 11, 21)
TOKEN = re.compile(r"dk1\.roll-(\d{4})\.[A-Za-z0-9_-]+")
HEX64 = re.compile(r"[0-9a-f]{64}")


def child_row(urn: str, serial: int, **changes: str) -> dict[str, str]:
    """A roster row whose names, address and UPN no other test's rows hold."""
    return pupil_row(urn, serial, given_name=f"Ottoline{serial}",
                     family_name=f"Wintergreen{serial}", former_family_name=f"Ashdown{serial}",
                     preferred_name=f"Otty{serial}", date_of_birth="2015-07-19",
                     address_line1=f"{serial} Larkspur Close", postcode="DY1 2AB") | changes


async def imported(engine: AsyncEngine, urn: str, *rows: dict[str, str],
                   now: datetime = IMPORTED) -> None:
    await import_roster(urn, roster_csv(*rows), uow=UnitOfWork(engine), imported_by="test",
                        now=now)


async def raw_rows(owner: AsyncEngine, urn: str) -> list[dict[str, Any]]:
    """The school's roll rows as the table holds them (the owner's engine: no keys)."""
    async with owner.connect() as conn:
        found = await conn.execute(select(pupils).where(pupils.c.urn == urn)
                                   .order_by(pupils.c.id))
        return [dict(row) for row in found.mappings()]


async def matched_urns(engine: AsyncEngine, row: dict[str, str]) -> set[str]:
    """The schools a fresh index over every roll matches the reported child to."""
    child = ChildReport(child_ref="0", given_name=row["given_name"],
                        family_name=row["family_name"],
                        date_of_birth=date.fromisoformat(row["date_of_birth"]),
                        postcode=row["postcode"], address_line1=row["address_line1"])
    index = (await RosterCache(engine, clock=lambda: IMPORTED).get()).index
    return {candidate.pupil.urn for candidate in index.match(child, on_date=ON).matches}


@pytest.fixture
async def school(matcher_engine: AsyncEngine) -> AsyncIterator[str]:
    """A registered school; its roll is deleted after the test (rows a test moved or sealed
    under its own keys would not open in another test's index)."""
    urn = next_urn()
    await register_school(matcher_engine, urn)
    yield urn
    async with matcher_engine.begin() as conn:
        await conn.execute(delete(pupils).where(pupils.c.urn == urn))


async def test_an_imported_roll_holds_no_child_data_in_the_clear(
        matcher_engine: AsyncEngine, engine: AsyncEngine, school: str) -> None:
    first, second = next_serial(), next_serial()
    rows = [child_row(school, first), child_row(school, second, gender="F")]
    await imported(matcher_engine, school, *rows)

    stored = await raw_rows(engine, school)
    assert len(stored) == 2
    held = {str(value) for row in stored for value in row.values() if value is not None}
    for row in rows:
        for name in ("upn", "given_name", "preferred_name", "family_name",
                     "former_family_name", "date_of_birth", "address_line1", "postcode"):
            assert row[name] not in held, name  # whole values: none is in any column
    assert {date(2015, 7, 19)} & {v for row in stored for v in row.values()} == set()
    for row in stored:
        assert TOKEN.fullmatch(row["child"])[1] == "2026"  # type: ignore[index]
        assert HEX64.fullmatch(row["upn_hash"])
        assert (row["given_name"], row["family_name"], row["date_of_birth"], row["upn"]) == (
            None, None, None, "")
        assert (row["urn"], row["enrolment_status"]) == (school, "C")  # clear, for SQL
    assert stored[0]["upn_hash"] != stored[1]["upn_hash"]
    opened = await roll_of(matcher_engine, school)  # the matcher opens them whole
    assert [(p["upn"], p["given_name"], p["former_family_name"], p["gender"],
             p["date_of_birth"].isoformat(), p["address_line1"]) for p in opened] == [
        (r["upn"], r["given_name"], r["former_family_name"], r["gender"], r["date_of_birth"],
         r["address_line1"]) for r in rows]


async def test_matching_works_after_the_import_and_after_a_reseal_under_next_years_key(
        matcher_engine: AsyncEngine, engine: AsyncEngine, school: str,
        session_keystore: Keystore) -> None:
    row = child_row(school, next_serial())
    await imported(matcher_engine, school, row)
    assert await matched_urns(matcher_engine, row) == {school}

    assert await reseal_roll(matcher_engine, now=NEXT_YEAR) >= 1  # the yearly rotation
    [stored] = await raw_rows(engine, school)
    assert TOKEN.fullmatch(stored["child"])[1] == "2027"  # type: ignore[index]
    assert await matched_urns(matcher_engine, row) == {school}
    keys = {p.name for p in session_keystore.keystore_dir.glob("roll-*.key")}
    assert {"roll-2026.key", "roll-2027.key"} <= keys  # the old key stays: old rows open

    # back under this year's key (what `daybreak reseal` does on the real clock), once
    assert await reseal_roll(matcher_engine, now=utc_now()) >= 1
    assert await reseal_roll(matcher_engine, now=utc_now()) == 0
    assert await matched_urns(matcher_engine, row) == {school}


async def test_a_upn_is_looked_up_by_its_keyed_hash_and_in_rows_stored_before_sealing(
        matcher_engine: AsyncEngine, school: str) -> None:
    other = next_urn()
    await register_school(matcher_engine, other)
    shared = upn(next_serial())
    await imported(matcher_engine, school, child_row(school, next_serial(), upn=shared),
                   child_row(school, next_serial()))
    clear = child_row(other, next_serial(), upn=shared)  # as stored before sealing
    async with matcher_engine.begin() as conn:
        await conn.execute(insert(pupils).values(
            **{k: v for k, v in clear.items()
               if k not in ("on_roll_from", "on_roll_to", "date_of_birth")},
            date_of_birth=date(2015, 7, 19)))

    async def holding(value: str) -> list[str]:
        async with matcher_engine.connect() as conn:
            return list((await conn.execute(
                select(pupils.c.urn).where(upn_is(sealing_of(conn), value))
                .order_by(pupils.c.urn))).scalars())

    try:
        assert await holding(shared) == sorted([school, other])
        assert await reseal_roll(matcher_engine, now=utc_now()) >= 1  # the clear row sealed
        assert await holding(shared) == sorted([school, other])
        assert await holding(upn(next_serial())) == []
        assert [p["upn"] for p in await roll_of(matcher_engine, other)] == [shared]
    finally:
        async with matcher_engine.begin() as conn:
            await conn.execute(delete(pupils).where(pupils.c.urn == other))


async def test_a_row_copied_to_another_pupils_id_does_not_open(
        matcher_engine: AsyncEngine, engine: AsyncEngine, school: str) -> None:
    rows = [child_row(school, next_serial()), child_row(school, next_serial())]
    await imported(matcher_engine, school, *rows)
    first, second = await raw_rows(engine, school)
    async with engine.begin() as conn:  # the owner moves the first pupil's data
        await conn.execute(update(pupils).where(pupils.c.id == second["id"]).values(
            child=first["child"]))
    async with matcher_engine.connect() as conn:
        found = (await conn.execute(select(pupils).where(pupils.c.urn == school)
                                    .order_by(pupils.c.id))).all()
        sealing = sealing_of(conn)
    assert opened_pupil(sealing, found[0]).given_name == rows[0]["given_name"]
    with pytest.raises(SealError):
        opened_pupil(sealing, found[1])
    opened, failed = opened_roll(sealing, found)  # the index leaves it out, counted
    assert ([p.given_name for p in opened], failed) == ([rows[0]["given_name"]], 1)
    with pytest.raises(SealError):  # no keystore fails the build, not each row
        opened_roll(NO_KEYS, found)
    assert await reseal_roll(matcher_engine, now=NEXT_YEAR) >= 0  # left as it is, no loop
    assert (await raw_rows(engine, school))[1]["child"] == first["child"]


async def test_shredding_old_monthly_keys_leaves_the_roll_readable(
        settings: Settings, keystore: Keystore) -> None:
    own = settings.model_copy(update=keystore.settings() | {"shred_expired_keys": True})
    matcher, notifier = service_engine(own, "matcher", pool_size=1), service_engine(
        own, "notifier", pool_size=1)
    urn = next_urn()
    january = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
    try:
        await register_school(matcher, urn)
        row = child_row(urn, next_serial())
        await imported(matcher, urn, row, now=january)
        monthly = keystore.keyring().seal({"summary": "x"}, aad="t:1:c", at=january)
        shredded = await shred_expired_keys(
            notifier, service="notifier", topic_prefix=own.topic_prefix, days=90,
            now=datetime(2026, 6, 1, tzinfo=UTC), trigger="cli")
        assert shredded == ["2026-01"] and keystore.keyring().periods() == []
        with pytest.raises(KeyShredded):
            keystore.keyring().open(monthly, aad="t:1:c")
        assert (keystore.keystore_dir / "roll-2026.key").exists()
        fresh = service_engine(own, "matcher", pool_size=1)  # nothing cached
        try:
            [opened] = await roll_of(fresh, urn)
        finally:
            await fresh.dispose()
        assert (opened["given_name"], opened["upn"]) == (row["given_name"], row["upn"])
    finally:
        async with matcher.begin() as conn:
            await conn.execute(delete(pupils).where(pupils.c.urn == urn))
        await matcher.dispose()
        await notifier.dispose()
