"""Ingest wiring: settings, engine, Kafka publisher, app."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

from services.common.app import create_app
from services.common.context import AppContext
from services.common.db import make_engine
from services.common.kafka import KafkaPublisher
from services.common.kafka_access import INGEST
from services.common.settings import Settings
from services.ingest.api import router

PORT = 8001


def build_app(settings: Settings | None = None) -> FastAPI:
    """The ingest app with real adapters."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    ctx = AppContext(
        settings=settings,
        engine=make_engine(settings.database_url, pool_size=settings.db_pool_size),
        registry=registry,
    )
    publisher = KafkaPublisher(
        settings.kafka(),
        topics=[settings.topic(t) for t in INGEST.produces],
        layout=settings.topic_layout(),
        request_timeout_ms=settings.kafka_request_timeout_ms,
        transactional_id=INGEST.transactional_id(settings.topic_prefix, uuid.uuid4().hex),
    )
    ctx.extras["publisher"] = publisher
    ctx.extras["accepted"] = Counter(
        "daybreak_incidents_accepted_total", "Incidents accepted", ["force"], registry=registry
    )

    async def broker(c: AppContext) -> None:
        await publisher.ping()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the broker may come later: requests answer 503 until it does
        with contextlib.suppress(Exception):
            await publisher.producer()
        yield
        await publisher.stop()
        await ctx.engine.dispose()

    app = create_app(title="Daybreak ingest", ctx=ctx, lifespan=lifespan, readiness=[broker])
    app.include_router(router)
    return app
