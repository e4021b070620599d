"""Matcher wiring: registry and review APIs, the incidents consumer, the outbox relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

from services.common import relay
from services.common.app import check_broker, create_app
from services.common.bootstrap import service_lifespan, table_worker
from services.common.db import service_engine
from services.common.kafka_access import MATCHER
from services.common.metrics import observe_worker
from services.common.relay import identity_client
from services.common.retention import daily_retention
from services.common.revocations import revocation_feed
from services.common.runner import in_background
from services.common.settings import Settings
from services.matcher.context import MatcherContext
from services.matcher.decisions import SOURCE
from services.matcher.handlers import HANDLERS, MatcherDeps
from services.matcher.index import RosterCache
from services.matcher.metrics import observe_index, observe_readiness, observe_reviews
from services.matcher.retention import run_retention
from services.matcher.reviews_api import router as reviews_router

PORT = 8002
SERVICE: Final = "matcher"


def build_app(
    settings: Settings | None = None, *, issuer: httpx.AsyncClient | None = None
) -> FastAPI:
    """The matcher app with real adapters and its background consumer."""
    from services.matcher.registry_api import router as registry_router

    settings = settings or Settings()
    registry = CollectorRegistry()
    engine = service_engine(settings, SERVICE)
    outcomes = Counter("daybreak_match_outcomes_total", "Children by match outcome", ["status"],
                       registry=registry)
    deps = MatcherDeps(engine=engine, roster=RosterCache(engine, clock=lambda: ctx.clock()),
                       topic_prefix=settings.topic_prefix, clock=lambda: ctx.clock(),
                       published=lambda: worker.wake_relay(),
                       on_decided=lambda status: outcomes.labels(status).inc())
    worker = table_worker(MATCHER, settings, engine=engine, source=SOURCE, handlers=HANDLERS,
                          deps=deps)
    ctx = MatcherContext(settings=settings, engine=engine, registry=registry,
                         issuer=issuer or identity_client(settings), deps=deps,
                         wake_relay=worker.wake_relay)
    observe_worker(ctx, worker)
    observe_reviews(ctx)
    observe_readiness(ctx)
    observe_index(ctx, deps.roster)
    feed = revocation_feed(settings)

    @asynccontextmanager
    async def background() -> AsyncIterator[None]:
        async with daily_retention(run_retention, engine=engine, settings=settings,
                                   clock=lambda: ctx.clock(), published=worker.wake_relay), \
                in_background(deps.roster.watch(settings.roster_check_seconds)):
            yield

    app = create_app(title="Daybreak matcher", service=SERVICE, ctx=ctx,
                     lifespan=service_lifespan(engine, feed, worker, inner=background),
                     readiness=[check_broker])
    feed.protect(ctx.tokens())
    app.include_router(registry_router)
    app.include_router(reviews_router)
    app.include_router(relay.router)
    return app
