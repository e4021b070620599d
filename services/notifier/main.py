"""Notifier wiring: the notifications API, the matches/incidents consumer, the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common import relay
from services.common.app import check_broker, create_app
from services.common.context import AppContext
from services.common.db import service_engine
from services.common.events import apply_record, apply_records
from services.common.kafka_access import NOTIFIER, NOTIFIER_REGISTRY
from services.common.metrics import observe_worker
from services.common.relay import identity_client
from services.common.retention import schedule_retention
from services.common.runner import Worker
from services.notifier.admin_api import router as deliveries_router
from services.notifier.api import SOURCE
from services.notifier.api import router as notifications_router
from services.notifier.channels import HttpxWebhookPoster, SmtpMailer
from services.notifier.directory import HANDLERS as DIRECTORY_HANDLERS
from services.notifier.directory import DirectoryDeps
from services.notifier.dispatch import Dispatcher
from services.notifier.handlers import HANDLERS, NotifierDeps
from services.notifier.metrics import observe_notifications
from services.notifier.portal import router as portal_router
from services.notifier.retention import run_retention
from services.notifier.settings import NotifierSettings

PORT = 8003
SERVICE = "notifier"


def build_app(
    settings: NotifierSettings | None = None, *, issuer: httpx.AsyncClient | None = None
) -> FastAPI:
    """The notifier app with real adapters, its consumer and its dispatcher."""
    settings = settings or NotifierSettings()
    ctx = AppContext(settings=settings, registry=CollectorRegistry(),
                     issuer=issuer or identity_client(settings),
                     engine=service_engine(settings, "notifier"))
    deps = NotifierDeps(engine=ctx.engine,
                        child_key_secret=settings.child_key_secret.get_secret_value(),
                        clock=lambda: ctx.clock(), topic_prefix=settings.topic_prefix)
    worker = Worker(
        kafka=settings.kafka(), engine=ctx.engine, source=settings.topic(SOURCE),
        group_id=NOTIFIER.group_id(settings.topic_prefix),
        consume=[settings.topic(t) for t in NOTIFIER.consumes],
        produce=[settings.topic(t) for t in NOTIFIER.produces],
        handle=functools.partial(apply_record, handlers=HANDLERS, deps=deps),
        handle_batch=functools.partial(apply_records, handlers=HANDLERS, deps=deps),
        layout=settings.topic_layout(),
    )
    directory_deps = DirectoryDeps(engine=ctx.engine)
    directory = Worker(
        kafka=settings.kafka(), engine=ctx.engine, source=settings.topic(SOURCE),
        group_id=NOTIFIER_REGISTRY.group_id(settings.topic_prefix),
        consume=[settings.topic(t) for t in NOTIFIER_REGISTRY.consumes], produce=[],
        relay=False,
        handle=functools.partial(apply_record, handlers=DIRECTORY_HANDLERS, deps=directory_deps),
        handle_batch=functools.partial(apply_records, handlers=DIRECTORY_HANDLERS,
                                       deps=directory_deps),
        layout=settings.topic_layout(),
    )
    ctx.extras["wake_relay"] = worker.wake_relay
    ctx.extras["deps"] = deps
    observe_worker(ctx, worker)
    observe_notifications(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        async with httpx.AsyncClient(timeout=settings.webhook_timeout_s) as http:
            dispatcher = Dispatcher(
                engine=ctx.engine, topic_prefix=settings.topic_prefix,
                mailer=SmtpMailer(host=settings.smtp_host, port=settings.smtp_port,
                                  sender=settings.mail_from, starttls=settings.smtp_starttls,
                                  timeout_s=settings.smtp_timeout_s),
                webhooks=HttpxWebhookPoster(http), clock=lambda: ctx.clock(),
                portal_base_url=settings.portal_base_url.rstrip("/"),
                link_ttl=timedelta(minutes=settings.sign_in_link_ttl_minutes),
                max_attempts=settings.delivery_max_attempts,
                backoff_s=settings.delivery_backoff_s,
            )
            ctx.extras["dispatcher"] = dispatcher
            directory.start()
            worker.start()
            task = asyncio.create_task(
                dispatcher.run(stop, interval_s=settings.dispatch_interval_s))
            retaining = schedule_retention(run_retention, engine=ctx.engine, settings=settings,
                                           clock=lambda: ctx.clock(), published=worker.wake_relay)
            yield
            retaining.cancel()
            stop.set()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 15)
            await worker.stop()
            await directory.stop()
        await ctx.engine.dispose()

    app = create_app(
        title="Daybreak notifier", service=SERVICE, ctx=ctx, lifespan=lifespan,
        readiness=[check_broker],
    )
    app.include_router(notifications_router)
    app.include_router(portal_router)
    app.include_router(deliveries_router)
    app.include_router(relay.router)
    return app
