"""/metrics under a flood: one round of gauge queries per interval, shared by every scrape."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text

from services.common.metrics import CachedRefresh, add_refresher
from services.common.settings import Settings
from services.matcher.main import build_app as build_matcher
from tests.support.api import metrics_auth

pytestmark = pytest.mark.integration


async def test_a_flood_of_scrapes_costs_one_refresh_per_interval(settings: Settings) -> None:
    app = build_matcher(settings.model_copy(update={"metrics_cache_seconds": 3600}))
    ctx = app.state.ctx
    queries = 0

    async def counted() -> None:  # a refresher that queries the database, slowly
        nonlocal queries
        queries += 1
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(0.2)"))

    add_refresher(ctx, "counted", counted)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        flood = await asyncio.gather(*(client.get("/metrics", headers=metrics_auth())
                                       for _ in range(60)))
        assert {r.status_code for r in flood} == {200}
        assert queries == 1
        refused = await asyncio.gather(*(client.get("/metrics") for _ in range(60)))
        assert {r.status_code for r in refused} == {401}
        assert queries == 1  # and unauthenticated scrapes reach no query at all
    await ctx.engine.dispose()


async def test_the_cache_refreshes_again_once_the_interval_has_passed(
    settings: Settings,
) -> None:
    app = build_matcher(settings)
    ctx = app.state.ctx
    ctx.refreshers.clear()
    calls = 0

    async def counted() -> None:
        nonlocal calls
        calls += 1

    add_refresher(ctx, "counted", counted)
    now = [1000.0]
    cached = CachedRefresh(ctx, max_age_s=15, clock=lambda: now[0])
    await asyncio.gather(*(cached() for _ in range(20)))
    now[0] += 14.9
    await cached()
    assert calls == 1
    now[0] += 0.2
    await asyncio.gather(*(cached() for _ in range(20)))
    assert calls == 2
    await ctx.engine.dispose()
