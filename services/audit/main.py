"""Audit wiring: the disclosures consumer, the tree-head signer and the auditor API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

from services.audit.api import router
from services.audit.context import AuditContext
from services.audit.handlers import AuditDeps, handle_record, on_disclosures
from services.audit.heads import AUDIT_HEADS, HeadSigner, KafkaHeads
from services.audit.log import TreeCache
from services.audit.settings import audit_settings
from services.common import relay
from services.common.app import check_broker, create_app
from services.common.bootstrap import build_worker, running, service_lifespan
from services.common.db import service_engine
from services.common.kafka_access import AUDIT
from services.common.metrics import observe_worker
from services.common.relay import identity_client
from services.common.revocations import revocation_feed
from services.common.settings import Settings

PORT = 8004
SERVICE: Final = "audit"
SOURCE = "audit"


def build_app(
    settings: Settings | None = None, *, issuer: httpx.AsyncClient | None = None
) -> FastAPI:
    """The audit app with real adapters, its consumer and its signer."""
    settings = audit_settings(settings)
    registry = CollectorRegistry()
    engine = service_engine(settings, SERVICE)
    appended = Counter("daybreak_audit_appended_total", "Audit entries appended", ["source"],
                       registry=registry)
    publish = KafkaHeads(settings.kafka(), settings.topic(AUDIT_HEADS),
                         layout=settings.topic_layout())
    tree = TreeCache()
    signer = HeadSigner(
        engine=engine, tree=tree, private_key=settings.private_key(),
        heads_file=settings.audit_heads_file, clock=lambda: ctx.clock(),
        every=settings.audit_sign_every, interval_s=settings.audit_sign_interval_s,
        publish=publish,
    )
    deps = AuditDeps(engine=engine, tree=tree, signer=signer, clock=lambda: ctx.clock(),
                     on_appended=lambda source: appended.labels(source).inc())
    # the relay stays idle (the audit service stages nothing in the outbox); Worker is used
    # for its restart-after-fault consumer loop and for creating the topics it names
    worker = build_worker(AUDIT, settings, engine=engine, source=SOURCE,
                          handle=functools.partial(handle_record, deps=deps),
                          handle_batch=functools.partial(on_disclosures, deps=deps))
    ctx = AuditContext(settings=settings, registry=registry, engine=engine, deps=deps,
                       issuer=issuer or identity_client(settings))
    observe_worker(ctx, worker)

    @asynccontextmanager
    async def signing() -> AsyncIterator[None]:
        # the signer outlives the consumer, so the last entries appended are signed
        task = asyncio.create_task(signer.run())  # first rebuilds the tree from the table
        async with running(worker):
            yield
        signer.stop()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        await signer.drain()
        await publish.stop()

    feed = revocation_feed(settings)
    app = create_app(title="Daybreak audit", service=SERVICE, ctx=ctx,
                     lifespan=service_lifespan(engine, feed, inner=signing),
                     readiness=[check_broker])
    feed.protect(ctx.tokens())
    app.include_router(router)
    app.include_router(relay.router)
    return app
