"""Malformed and oversized roster and calendar uploads: row-numbered refusals (event-named for
iCalendar term dates), nothing changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.app import create_app
from services.common.context import AppContext
from services.common.settings import Settings
from services.matcher.registry_api import router
from tests.support.api import running
from tests.support.hostile import (
    CALENDARS,
    CANARY,
    MALFORMED_ROSTERS,
    MALFORMED_TERM_DATES,
    lines_of,
    roll_of,
    school_with_roll,
)
from tests.support.ids import next_urn
from tests.support.registry import overrides, post_roster, register_school
from tests.support.registry_files import all_day, calendar_csv, ics, roll

pytestmark = pytest.mark.integration
UPLOAD_LIMIT = 64 * 1024


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
    assert response.json() == {"urn": urn, "rows": 6, "replaced": 5, "skipped": 0}
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


@pytest.mark.parametrize("case", sorted(CALENDARS))
async def test_malformed_calendar_is_refused_by_row_and_the_old_one_stays(
    registry: httpx.AsyncClient, admin: dict[str, str], engine: AsyncEngine, case: str
) -> None:
    urn = next_urn()
    await register_school(engine, urn)
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


@pytest.mark.parametrize("case", sorted(MALFORMED_TERM_DATES))
async def test_malformed_term_dates_are_refused_by_event_and_the_old_ones_stay(
    registry: httpx.AsyncClient, admin: dict[str, str], engine: AsyncEngine, case: str
) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    headers = admin | {"Content-Type": "text/calendar"}
    good = ics(all_day("Half term", "20270215", "20270220"))
    assert (await registry.put(f"/v1/schools/{urn}/calendar", content=good, headers=headers)
            ).status_code == 200
    before = await overrides(engine, urn, "term")
    data, first = MALFORMED_TERM_DATES[case]
    response = await registry.put(f"/v1/schools/{urn}/calendar", content=data, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["message"].startswith(first), response.text
    assert CANARY not in response.text
    assert await overrides(engine, urn, "term") == before
