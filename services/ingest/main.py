"""Ingest wiring: settings, engine, Kafka publisher, app."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

from services.common import relay
from services.common.app import create_app
from services.common.bootstrap import service_lifespan
from services.common.context import AppContext
from services.common.db import service_engine
from services.common.kafka import KafkaPublisher
from services.common.kafka_access import INGEST
from services.common.relay import identity_client
from services.common.settings import Settings
from services.ingest.api import router
from services.ingest.context import IngestContext
from services.ingest.readiness import observe_readiness

PORT = 8001
SERVICE: Final = "ingest"


def build_app(
    settings: Settings | None = None, *, issuer: httpx.AsyncClient | None = None
) -> FastAPI:
    """The ingest app with real adapters (`issuer`: the client to the identity service)."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    publisher = KafkaPublisher(
        settings.kafka(), topics=[settings.topic(t) for t in INGEST.produces],
        layout=settings.topic_layout(), request_timeout_ms=settings.kafka_request_timeout_ms,
        transactional_id=INGEST.transactional_id(settings.topic_prefix, uuid.uuid4().hex),
    )
    ctx = IngestContext(
        settings=settings, issuer=issuer or identity_client(settings),
        engine=service_engine(settings, SERVICE), registry=registry, publisher=publisher,
        accepted=Counter("daybreak_incidents_accepted_total", "Incidents accepted", ["force"],
                         registry=registry),
    )

    async def broker(c: AppContext) -> None:
        await publisher.ping()

    @asynccontextmanager
    async def publishing() -> AsyncIterator[None]:
        # the broker may come later: requests answer 503 until it does
        with contextlib.suppress(Exception):
            await publisher.producer()
        yield
        await publisher.stop()

    app = create_app(title="Daybreak ingest", service=SERVICE, ctx=ctx,
                     lifespan=service_lifespan(ctx.engine, inner=publishing),
                     readiness=[broker])
    app.include_router(router)
    app.include_router(relay.router)
    observe_readiness(ctx)
    return app
