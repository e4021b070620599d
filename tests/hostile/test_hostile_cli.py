"""`daybreak roster|calendar|schools import` refuse malformed files: row-numbered (or, for
iCalendar term dates, naming the event), exit 2, nothing changed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.matcher.models import schools
from tests.support.hostile import (
    CALENDARS,
    CANARY,
    MALFORMED_ROSTERS,
    MALFORMED_TERM_DATES,
    roll_of,
    school_with_roll,
)
from tests.support.ids import next_la, next_urn
from tests.support.registry import la_body, overrides, register_school, run_cli
from tests.support.registry_files import all_day, calendar_csv, gias_file, ics

pytestmark = pytest.mark.integration
Capsys = pytest.CaptureFixture[str]


def gias_rows(urns: list[str], la: str, bad: int | None = None, **bad_values: str) -> bytes:
    """A GIAS file of open primaries; the one at index `bad` gets `bad_values`."""
    rows = []
    for i, urn in enumerate(urns):
        row = {"urn": urn, "la": la, "name": f"School {i}", "status": "Open", "low": "4"}
        row |= bad_values if i == bad else {}
        rows.append(f"{row['urn']},{row['la']},{row['name']},{row['status']},Primary,"
                    f"{row['low']},11,,")
    return gias_file(*rows)


GIAS: dict[str, tuple[Callable[[list[str], str], bytes], str]] = {
    "missing columns": (lambda u, la: b"URN,LA (code)\n" + f"{u[0]},{la}\n".encode(),
                        "row 1: missing column(s): EstablishmentName"),
    "extra column": (lambda u, la: gias_rows(u, la).replace(b",,\r\n", f",,,{CANARY}\r\n"
                                                            .encode(), 1),
                     "row 2: expected 9 fields"),
    "unbalanced quote": (lambda u, la: gias_rows(u, la, 1, name=f'"{CANARY}'),
                         "row 3: expected 9 fields"),
    "NUL byte": (lambda u, la: gias_rows(u, la, 3, name=f"{CANARY}\x00"),
                 "row 5: EstablishmentName: contains a NUL character"),
    "bad row in the middle of 1,000": (lambda u, la: gias_rows(u, la, 500, low="four"),
                                       "row 502: StatutoryLowAge: must be a whole number"),
}


def import_file(capsys: Capsys, command: str, path: Path, data: bytes) -> tuple[int, list[str]]:
    """Run `daybreak COMMAND import PATH` on the bytes; the exit code and stderr lines."""
    path.write_bytes(data)
    code = run_cli(command, "import", str(path))
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err
    assert code == 0 or captured.out == ""
    return code, captured.err.splitlines()


def assert_rejected(code: int, err: list[str], what: str, first: str) -> None:
    """Exit 2, a headline saying nothing was imported, then the first row-numbered problem."""
    assert code == 2, err
    assert err[0].startswith(f"daybreak: invalid {what}: "), err
    assert err[0].endswith("problem(s); nothing was imported"), err
    assert err[1].startswith(f"daybreak: {first}"), err


@pytest.mark.parametrize("case", sorted(MALFORMED_ROSTERS))
async def test_cli_roster_import_refuses_malformed_files(
    registry: httpx.AsyncClient, admin: dict[str, str], engine: AsyncEngine, cli_env: None,
    capsys: Capsys, tmp_path: Path, case: str
) -> None:
    urn, before = await school_with_roll(registry, admin, engine)
    build, row, field = MALFORMED_ROSTERS[case]
    code, err = await asyncio.to_thread(import_file, capsys, "roster", tmp_path / "r.csv",
                                        build(urn))
    assert_rejected(code, err, "roster", f"row {row}: {field + ': ' if field else ''}")
    assert await roll_of(engine, urn) == before


@pytest.mark.parametrize("case", sorted(CALENDARS))
async def test_cli_calendar_import_refuses_malformed_files(
    engine: AsyncEngine, cli_env: None, capsys: Capsys, tmp_path: Path, case: str
) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    path = tmp_path / "c.csv"
    good = calendar_csv((urn, "2026-12-21", "closed"))
    assert await asyncio.to_thread(import_file, capsys, "calendar", path, good.encode()) == (
        0, [])
    build, row, field = CALENDARS[case]
    code, err = await asyncio.to_thread(import_file, capsys, "calendar", path, build(urn))
    assert_rejected(code, err, "calendar", f"row {row}: {field + ': ' if field else ''}")
    assert len(await overrides(engine, urn)) == 1


@pytest.mark.parametrize("case", sorted(MALFORMED_TERM_DATES))
@pytest.mark.parametrize("whose", ["--la", "--school"])
async def test_cli_term_dates_import_refuses_malformed_files(
    registry: httpx.AsyncClient, admin: dict[str, str], engine: AsyncEngine, cli_env: None,
    capsys: Capsys, tmp_path: Path, case: str, whose: str,
) -> None:
    la, urn = next_la(), next_urn()
    await registry.put(f"/v1/local-authorities/{la}", headers=admin, json=la_body())
    await register_school(engine, urn, la)
    target = la if whose == "--la" else urn
    path = tmp_path / "term-dates.ics"

    def run(data: bytes) -> tuple[int, list[str]]:
        path.write_bytes(data)
        code = run_cli("calendar", "import", whose, target, str(path))
        captured = capsys.readouterr()
        assert CANARY not in captured.out + captured.err
        assert code == 0 or captured.out == ""
        return code, captured.err.splitlines()

    assert await asyncio.to_thread(run, ics(all_day("Half term", "20270215", "20270220"))
                                   ) == (0, [])
    before = await term_days(registry, admin, engine, la, urn)
    data, first = MALFORMED_TERM_DATES[case]
    code, err = await asyncio.to_thread(run, data)
    assert_rejected(code, err, "icalendar file", f"file: {first}")
    assert await term_days(registry, admin, engine, la, urn) == before


async def term_days(registry: httpx.AsyncClient, admin: dict[str, str], engine: AsyncEngine,
                    la: str, urn: str) -> tuple[Any, ...]:
    """The LA's term dates and the school's own."""
    got = await registry.get(f"/v1/local-authorities/{la}/calendar", headers=admin)
    return got.json()["days"], await overrides(engine, urn, "term")


@pytest.mark.parametrize("case", sorted(GIAS))
async def test_cli_schools_import_refuses_malformed_files(
    engine: AsyncEngine, cli_env: None, capsys: Capsys, tmp_path: Path, case: str
) -> None:
    urns, la = [next_urn() for _ in range(1000)], next_la()
    build, first = GIAS[case]
    code, err = await asyncio.to_thread(import_file, capsys, "schools", tmp_path / "g.csv",
                                        build(urns, la))
    assert_rejected(code, err, "gias file", first)
    async with engine.connect() as conn:
        created = (await conn.execute(select(func.count()).select_from(schools).where(
            schools.c.la_code == la))).scalar_one()
    assert created == 0
