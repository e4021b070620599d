"""Matcher gauges read at scrape time: the LA review queue and the registry's readiness from
its tables, the roster index's age and rebuilds from the cache that holds it."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Gauge
from sqlalchemy import func, select

from services.common.context import AppContext
from services.common.metrics import add_refresher, observe_readiness_problems
from services.matcher.index import IndexStatus, RosterCache
from services.matcher.models import local_authorities, reviews
from services.matcher.readiness import CODES, registry_problems

NO_LA = "none"  # a review whose child's LA is not known


def observe_reviews(ctx: AppContext) -> None:
    """Open reviews and the age of the oldest, per LA code (public codes, every LA listed)."""
    open_reviews = Gauge(
        "daybreak_reviews_open", "Reviews waiting for an LA officer, by LA code",
        ["la_code"], registry=ctx.registry)
    oldest = Gauge(
        "daybreak_reviews_oldest_open_age_seconds",
        "Seconds since the oldest open review was raised, by LA code (0 when none is open)",
        ["la_code"], registry=ctx.registry)

    async def refresh() -> None:
        r = reviews.c
        async with ctx.engine.connect() as conn:
            las = (await conn.execute(select(local_authorities.c.la_code))).scalars().all()
            rows = (await conn.execute(
                select(r.la_code, func.count(), func.min(r.created_at))
                .where(r.status == "open").group_by(r.la_code))).all()
        now = ctx.clock()
        # clear and refill with no await in between: a concurrent scrape never sees it half-done
        open_reviews.clear()
        oldest.clear()
        for la in las:
            open_reviews.labels(la).set(0)
            oldest.labels(la).set(0)
        for la_code, count, first_at in rows:
            open_reviews.labels(la_code or NO_LA).set(count)
            oldest.labels(la_code or NO_LA).set(max(0.0, (now - first_at).total_seconds()))

    add_refresher(ctx, "reviews", refresh)


def observe_readiness(ctx: AppContext) -> None:
    """Registry problems that would leave a child with nobody told, by problem code."""
    observe_readiness_problems(ctx, CODES, lambda conn, now: registry_problems(conn, now=now))


def observe_index(ctx: AppContext, roster: RosterCache) -> None:
    """The served roster index: its rows, the age of its rolls, and any rebuild under way."""

    def age(status: IndexStatus) -> float:
        read_at = status.read_at
        return max(0.0, (ctx.clock() - read_at).total_seconds()) if read_at else 0.0

    figures: list[tuple[str, str, Callable[[IndexStatus], float]]] = [
        ("pupils", "Roll rows in the roster index matched against", lambda s: s.pupils),
        ("age_seconds", "Seconds since the served roster index read the rolls (0 before the "
         "first build)", age),
        ("rebuilding", "1 while the roster index is rebuilt in the background",
         lambda s: int(s.rebuilding)),
        ("behind", "1 while the served index lags a roll import or a school's closure",
         lambda s: int(s.behind)),
        ("rebuild_failures", "Background rebuilds of the roster index that failed since the "
         "matcher started", lambda s: s.failures),
    ]
    gauges = [(Gauge(f"daybreak_matcher_index_{name}", text, registry=ctx.registry), figure)
              for name, text, figure in figures]

    async def refresh() -> None:
        status = roster.status()
        for gauge, figure in gauges:
            gauge.set(figure(status))

    add_refresher(ctx, "roster_index", refresh)
