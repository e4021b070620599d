"""Malformed and oversized roster and calendar uploads: row-numbered refusals, nothing changed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.app import create_app
from services.common.context import AppContext
from services.common.settings import Settings
from services.matcher.models import pupils, roster_imports
from services.matcher.registry_api import router
from tests.integration.test_calendars import calendar_csv, overrides
from tests.integration.test_registry import (
    add_school,
    new_urn,
    post_roster,
    pupil_row,
    roll,
    roster_csv,
)
from tests.support.api import running

pytestmark = pytest.mark.integration
CANARY = "Qzhostilecanary"  # a name that must never come back in an error body
UPLOAD_LIMIT = 64 * 1024
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


@pytest.fixture
async def small_registry(settings: Settings,
                         engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The registry with a 64 KiB upload limit."""
    limited = settings.model_copy(update={"max_upload_bytes": UPLOAD_LIMIT})
    app = create_app(title="registry", service="matcher", ctx=AppContext(
        settings=limited, engine=engine, registry=CollectorRegistry()))
    app.include_router(router)
    async with running(app) as client:
        yield client


async def roll_of(engine: AsyncEngine, urn: str) -> tuple[list[str], int]:
    """The family names on the school's roll and how many imports it has had."""
    async with engine.connect() as conn:
        names = (await conn.execute(select(pupils.c.family_name).where(pupils.c.urn == urn)
                                    .order_by(pupils.c.family_name))).scalars().all()
        imports = (await conn.execute(select(func.count()).select_from(roster_imports).where(
            roster_imports.c.urn == urn))).scalar_one()
    return list(names), int(imports)


async def school_with_roll(registry: httpx.AsyncClient, admin: dict[str, str],
                           engine: AsyncEngine) -> tuple[str, tuple[list[str], int]]:
    """A school whose roll has five pupils."""
    urn = new_urn()
    await add_school(engine, urn)
    assert (await post_roster(registry, urn, roll(urn, 5), admin)).status_code == 200
    return urn, await roll_of(engine, urn)


def assert_refused(response: httpx.Response, row: int, field: str | None) -> None:
    """A row-numbered 422 problem that names no value from the file."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    first = response.json()["errors"][0]
    assert (first["row"], first["field"]) == (row, field), response.text
    assert CANARY not in response.text and "Zebedee" not in response.text


@pytest.mark.parametrize("case", sorted(MALFORMED_ROSTERS))
async def test_malformed_roster_is_refused_by_row_and_the_old_roll_stays(
    registry: httpx.AsyncClient, admin: dict[str, str], engine: AsyncEngine, case: str
) -> None:
    urn, before = await school_with_roll(registry, admin, engine)
    build, row, field = MALFORMED_ROSTERS[case]
    response = await registry.post(f"/v1/schools/{urn}/roster", content=build(urn),
                              headers=admin | {"Content-Type": "text/csv"})
    assert_refused(response, row, field)
    assert await roll_of(engine, urn) == before


async def test_mixed_line_endings_are_one_clean_roll(
    registry: httpx.AsyncClient, admin: dict[str, str], engine: AsyncEngine
) -> None:
    urn, _ = await school_with_roll(registry, admin, engine)
    lines = lines_of(urn, 6)
    mixed = "".join(line + end for line, end in zip(lines, ["\r\n", "\n", "\r", "\r\n"] * 2,
                                                    strict=False))
    response = await post_roster(registry, urn, mixed, admin)
    assert response.json() == {"urn": urn, "rows": 6, "replaced": 5}
    names, _ = await roll_of(engine, urn)
    assert names == sorted(f"Quibble{500 + i}" for i in range(6))  # no stray \r kept


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_oversized_uploads_are_413_and_change_nothing(
    small_registry: httpx.AsyncClient, admin: dict[str, str], engine: AsyncEngine, declared: bool
) -> None:
    urn, before = await school_with_roll(small_registry, admin, engine)
    await small_registry.put(f"/v1/schools/{urn}/calendar", headers=admin | {
        "Content-Type": "text/csv"}, content=calendar_csv((urn, "2026-12-21", "closed")).encode())
    days = await overrides(engine, urn)
    big = {"roster": roll(urn, 1000).encode(), "calendar": calendar_csv(*(
        (urn, (date(2027, 1, 1) + timedelta(days=i)).isoformat(), "closed")
        for i in range(3000))).encode()}
    assert all(len(body) > UPLOAD_LIMIT for body in big.values())
    for kind, body in big.items():

        async def stream(body: bytes = body) -> AsyncIterator[bytes]:
            for start in range(0, len(body), 8192):
                yield body[start:start + 8192]

        method = "POST" if kind == "roster" else "PUT"
        response = await small_registry.request(
            method, f"/v1/schools/{urn}/{kind}", content=body if declared else stream(),
            headers=admin | {"Content-Type": "text/csv"})
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert await roll_of(engine, urn) == before
    assert await overrides(engine, urn) == days


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


@pytest.mark.parametrize("case", sorted(CALENDARS))
async def test_malformed_calendar_is_refused_by_row_and_the_old_one_stays(
    registry: httpx.AsyncClient, admin: dict[str, str], engine: AsyncEngine, case: str
) -> None:
    urn = new_urn()
    await add_school(engine, urn)
    good = calendar_csv((urn, "2026-12-21", "closed"), (urn, "2026-12-22", "open"))
    await registry.put(f"/v1/schools/{urn}/calendar", content=good.encode(),
                  headers=admin | {"Content-Type": "text/csv"})
    before = await overrides(engine, urn)
    assert len(before) == 2
    build, row, field = CALENDARS[case]
    response = await registry.put(f"/v1/schools/{urn}/calendar", content=build(urn),
                             headers=admin | {"Content-Type": "text/csv"})
    assert_refused(response, row, field)
    assert await overrides(engine, urn) == before
