"""Audit wiring: the disclosures consumer, the tree-head signer and the auditor API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

from services.audit.api import router
from services.audit.handlers import AuditDeps, handle_record, on_disclosures
from services.audit.heads import AUDIT_HEADS, HeadSigner, KafkaHeads
from services.audit.log import TreeCache
from services.audit.settings import audit_settings
from services.common import relay
from services.common.app import check_broker, create_app
from services.common.context import AppContext
from services.common.db import service_engine
from services.common.kafka_access import AUDIT
from services.common.metrics import observe_worker
from services.common.relay import identity_client
from services.common.runner import Worker
from services.common.settings import Settings

PORT = 8004
SERVICE = "audit"
SOURCE = "audit"


def build_app(
    settings: Settings | None = None, *, issuer: httpx.AsyncClient | None = None
) -> FastAPI:
    """The audit app with real adapters, its consumer and its signer."""
    settings = audit_settings(settings)
    registry = CollectorRegistry()
    ctx = AppContext(settings=settings, registry=registry,
                     issuer=issuer or identity_client(settings),
                     engine=service_engine(settings, "audit"))
    appended = Counter("daybreak_audit_appended_total", "Audit entries appended", ["source"],
                       registry=registry)
    heads_topic = settings.topic(AUDIT_HEADS)
    publish = KafkaHeads(settings.kafka(), heads_topic, layout=settings.topic_layout())
    tree = TreeCache()
    signer = HeadSigner(
        engine=ctx.engine, tree=tree, private_key=settings.private_key(),
        heads_file=settings.audit_heads_file, clock=lambda: ctx.clock(),
        every=settings.audit_sign_every, interval_s=settings.audit_sign_interval_s,
        publish=publish,
    )
    deps = AuditDeps(engine=ctx.engine, tree=tree, signer=signer, clock=lambda: ctx.clock(),
                     on_appended=lambda source: appended.labels(source).inc())
    # the relay stays idle (the audit service stages nothing in the outbox); Worker is used
    # for its restart-after-fault consumer loop and for creating the topics it names
    worker = Worker(
        kafka=settings.kafka(), engine=ctx.engine, source=settings.topic(SOURCE),
        group_id=AUDIT.group_id(settings.topic_prefix),
        consume=[settings.topic(t) for t in AUDIT.consumes], produce=[heads_topic],
        handle=functools.partial(handle_record, deps=deps), layout=settings.topic_layout(),
        handle_batch=functools.partial(on_disclosures, deps=deps),
    )
    ctx.extras["audit"] = deps
    observe_worker(ctx, worker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        signing = asyncio.create_task(signer.run())  # first rebuilds the tree from the table
        worker.start()
        yield
        await worker.stop()
        signer.stop()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(signing, 15)
        await signer.drain()
        await publish.stop()
        await ctx.engine.dispose()

    app = create_app(title="Daybreak audit", service=SERVICE, ctx=ctx, lifespan=lifespan,
                     readiness=[check_broker])
    app.include_router(router)
    app.include_router(relay.router)
    return app
