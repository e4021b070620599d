"""Matcher wiring: registry and review APIs, the incidents consumer, the outbox relay."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

from services.common import relay
from services.common.app import check_broker, create_app
from services.common.context import AppContext
from services.common.db import service_engine
from services.common.events import apply_record, apply_records
from services.common.kafka_access import MATCHER
from services.common.metrics import observe_worker
from services.common.relay import identity_client
from services.common.retention import schedule_retention
from services.common.runner import Worker
from services.common.settings import Settings
from services.matcher.decisions import SOURCE
from services.matcher.handlers import HANDLERS, MatcherDeps
from services.matcher.index import RosterCache
from services.matcher.metrics import observe_reviews
from services.matcher.retention import run_retention
from services.matcher.reviews_api import router as reviews_router

PORT = 8002
SERVICE = "matcher"


def build_app(
    settings: Settings | None = None, *, issuer: httpx.AsyncClient | None = None
) -> FastAPI:
    """The matcher app with real adapters and its background consumer."""
    from services.matcher.registry_api import router as registry_router

    settings = settings or Settings()
    registry = CollectorRegistry()
    ctx = AppContext(settings=settings, registry=registry,
                     issuer=issuer or identity_client(settings),
                     engine=service_engine(settings, "matcher"))
    outcomes = Counter("daybreak_match_outcomes_total", "Children by match outcome", ["status"],
                       registry=registry)
    deps = MatcherDeps(engine=ctx.engine, roster=RosterCache(ctx.engine),
                       topic_prefix=settings.topic_prefix, clock=lambda: ctx.clock(),
                       published=lambda: worker.wake_relay(),
                       on_decided=lambda status: outcomes.labels(status).inc())
    worker = Worker(
        kafka=settings.kafka(), engine=ctx.engine, source=settings.topic(SOURCE),
        group_id=MATCHER.group_id(settings.topic_prefix),
        consume=[settings.topic(t) for t in MATCHER.consumes],
        produce=[settings.topic(t) for t in MATCHER.produces],
        handle=functools.partial(apply_record, handlers=HANDLERS, deps=deps),
        handle_batch=functools.partial(apply_records, handlers=HANDLERS, deps=deps),
        layout=settings.topic_layout(),
    )
    ctx.extras["wake_relay"] = worker.wake_relay
    ctx.extras["deps"] = deps
    observe_worker(ctx, worker)
    observe_reviews(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        retaining = schedule_retention(run_retention, engine=ctx.engine, settings=settings,
                                       clock=lambda: ctx.clock(), published=worker.wake_relay)
        yield
        retaining.cancel()
        await worker.stop()
        await ctx.engine.dispose()

    app = create_app(title="Daybreak matcher", service=SERVICE, ctx=ctx, lifespan=lifespan,
                     readiness=[check_broker])
    app.include_router(registry_router)
    app.include_router(reviews_router)
    app.include_router(relay.router)
    return app
