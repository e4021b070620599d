"""Ingest wiring: settings, engine, Kafka publisher, app."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.common import relay
from services.common.app import create_app
from services.common.bootstrap import service_lifespan, table_worker
from services.common.context import AppContext
from services.common.db import service_engine
from services.common.kafka import KafkaPublisher
from services.common.kafka_access import INGEST
from services.common.metrics import observe_worker
from services.common.relay import identity_client
from services.common.revocations import revocation_feed
from services.common.safe_http import Egress, egress_client
from services.common.sealing import sealing_of
from services.common.settings import Settings
from services.common.webhook_signing import HttpxWebhookPoster
from services.ingest.api import router
from services.ingest.batcher import IngestBatcher
from services.ingest.context import IngestContext
from services.ingest.readiness import observe_readiness
from services.ingest.receipts import HANDLERS, ReceiptDeps
from services.ingest.receipts_api import router as receipts_router
from services.ingest.receipts_webhooks import ReceiptDeliverer
from services.ingest.settings import IngestSettings, ingest_settings

PORT = 8001
SERVICE: Final = "ingest"


def build_app(
    settings: Settings | None = None, *, issuer: httpx.AsyncClient | None = None
) -> FastAPI:
    """The ingest app with real adapters (`issuer`: the client to the identity service), its
    `notifications.v1` consumer (the receipts) and the receipts webhooks' deliverer."""
    settings = ingest_settings(settings)
    registry = CollectorRegistry()
    engine = service_engine(settings, SERVICE)
    publisher = KafkaPublisher(
        settings.kafka(), topics=[settings.topic(t) for t in INGEST.produces],
        layout=settings.topic_layout(), request_timeout_ms=settings.kafka_request_timeout_ms,
        transactional_id=INGEST.transactional_id(settings.topic_prefix, uuid.uuid4().hex),
        sealing=sealing_of(engine).check(),  # incidents leave with their child data sealed
    )
    batcher = IngestBatcher(
        engine=engine, publisher=publisher, topic_prefix=settings.topic_prefix,
        max_batch=settings.ingest_batch_max, linger_s=settings.ingest_batch_linger_ms / 1000,
        in_flight=settings.ingest_batch_in_flight,
        sizes=Histogram("daybreak_ingest_batch_reports", "New reports per group-commit batch",
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 500), registry=registry))
    ctx = IngestContext(
        settings=settings, issuer=issuer or identity_client(settings),
        engine=engine, registry=registry, publisher=publisher, batcher=batcher,
        accepted=Counter("daybreak_incidents_accepted_total", "Incidents accepted", ["force"],
                         registry=registry),
    )

    # no outbox: ingest publishes incidents in its own Kafka transactions (README)
    worker = table_worker(INGEST, settings, engine=ctx.engine, source=SERVICE, relay=False,
                          handlers=HANDLERS,
                          deps=ReceiptDeps(engine=ctx.engine, clock=lambda: ctx.clock()))
    observe_worker(ctx, worker)

    async def broker(c: AppContext) -> None:
        await publisher.ping()

    @asynccontextmanager
    async def publishing() -> AsyncIterator[None]:
        # the broker may come later: requests answer 503 until it does
        with contextlib.suppress(Exception):
            await publisher.producer()
        async with delivering(ctx, settings):
            yield
        await batcher.stop()
        await publisher.stop()

    feed = revocation_feed(settings)
    app = create_app(title="Daybreak ingest", service=SERVICE, ctx=ctx,
                     lifespan=service_lifespan(ctx.engine, feed, worker, inner=publishing),
                     readiness=[broker])
    feed.protect(ctx.tokens())
    app.include_router(router)
    app.include_router(receipts_router)
    app.include_router(relay.router)
    observe_readiness(ctx)
    return app


@asynccontextmanager
async def delivering(ctx: IngestContext, settings: IngestSettings) -> AsyncIterator[None]:
    """Post forces' receipt changes in the background while the app runs."""
    stop = asyncio.Event()
    egress = Egress(allow_loopback=settings.webhook_allow_loopback,
                    timeout_s=settings.receipt_webhook_timeout_s)
    async with egress_client(settings.receipt_webhook_timeout_s) as http:
        ctx.deliverer = deliverer = ReceiptDeliverer(
            engine=ctx.engine, poster=HttpxWebhookPoster(http, egress=egress),
            clock=lambda: ctx.clock(),
            max_attempts=settings.receipt_delivery_max_attempts,
            backoff_s=settings.receipt_delivery_backoff_s)
        task = asyncio.create_task(
            deliverer.run(stop, interval_s=settings.receipt_delivery_interval_s))
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 15)
