"""Notifier wiring: the notifications API, the matches/incidents consumer, the dispatcher,
the registry copy and the figures' read model."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Final

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common import relay
from services.common.app import check_broker, create_app
from services.common.bootstrap import service_lifespan, table_worker
from services.common.db import service_engine
from services.common.kafka_access import NOTIFIER, NOTIFIER_FIGURES, NOTIFIER_REGISTRY
from services.common.metrics import observe_worker
from services.common.relay import identity_client
from services.common.retention import daily_retention
from services.common.revocations import revocation_feed
from services.common.runner import in_background
from services.common.safe_http import Egress, egress_client
from services.notifier.admin_api import router as deliveries_router
from services.notifier.api import SOURCE, open_items_router
from services.notifier.api import router as notifications_router
from services.notifier.attendance import following_up
from services.notifier.attendance import router as attendance_router
from services.notifier.channels import HttpxWebhookPoster, SmtpMailer
from services.notifier.context import NotifierContext
from services.notifier.directory import HANDLERS as DIRECTORY_HANDLERS
from services.notifier.directory import DirectoryDeps
from services.notifier.dispatch import Dispatcher
from services.notifier.figures_store import HANDLERS as FIGURES_HANDLERS
from services.notifier.figures_store import FiguresDeps
from services.notifier.handlers import HANDLERS, NotifierDeps
from services.notifier.metrics import observe_notifications
from services.notifier.partners import router as partners_router
from services.notifier.portal import router as portal_router
from services.notifier.record import router as record_router
from services.notifier.rekey import rekey_in_background
from services.notifier.retention import run_retention
from services.notifier.settings import NotifierSettings

PORT = 8003
SERVICE: Final = "notifier"


def build_app(
    settings: NotifierSettings | None = None, *, issuer: httpx.AsyncClient | None = None
) -> FastAPI:
    """The notifier app with real adapters, its consumer and its dispatcher."""
    settings = settings or NotifierSettings()
    engine = service_engine(settings, SERVICE)
    deps = NotifierDeps(engine=engine,
                        child_key_secret=settings.child_keys(),
                        clock=lambda: ctx.clock(), topic_prefix=settings.topic_prefix,
                        service_desk=settings.service_desk_email)
    worker = table_worker(NOTIFIER, settings, engine=engine, source=SOURCE, handlers=HANDLERS,
                          deps=deps)
    directory = table_worker(NOTIFIER_REGISTRY, settings, engine=engine, source=SOURCE,
                             handlers=DIRECTORY_HANDLERS, deps=DirectoryDeps(engine=engine),
                             relay=False)
    figures = table_worker(NOTIFIER_FIGURES, settings, engine=engine, source=SOURCE,
                           handlers=FIGURES_HANDLERS, deps=FiguresDeps(engine=engine),
                           relay=False)
    ctx = NotifierContext(settings=settings, registry=CollectorRegistry(), engine=engine,
                          issuer=issuer or identity_client(settings), deps=deps,
                          wake_relay=worker.wake_relay)
    observe_worker(ctx, worker)
    observe_notifications(ctx)

    @asynccontextmanager
    async def dispatching() -> AsyncIterator[None]:
        stop = asyncio.Event()
        async with egress_client(settings.webhook_timeout_s) as http:
            ctx.dispatcher = dispatcher = build_dispatcher(settings, ctx, http)
            task = asyncio.create_task(
                dispatcher.run(stop, interval_s=settings.dispatch_interval_s))
            async with (daily_retention(run_retention, engine=engine, settings=settings,
                                        clock=lambda: ctx.clock(), published=worker.wake_relay),
                        following_up(ctx, interval_s=settings.dispatch_interval_s),
                        in_background(rekey_in_background(
                            engine, deps.child_key_secret,
                            retry_s=settings.dispatch_interval_s))):
                yield
            stop.set()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 15)

    feed = revocation_feed(settings)
    app = create_app(title="Daybreak notifier", service=SERVICE, ctx=ctx,
                     lifespan=service_lifespan(engine, feed, directory, figures, worker,
                                              inner=dispatching),
                     readiness=[check_broker])
    feed.protect(ctx.tokens())
    for router in (notifications_router, open_items_router, portal_router, deliveries_router,
                   relay.router):
        app.include_router(router)
    app.include_router(attendance_router)
    app.include_router(partners_router)
    app.include_router(record_router)
    return app


def build_dispatcher(
    settings: NotifierSettings, ctx: NotifierContext, http: httpx.AsyncClient
) -> Dispatcher:
    """The dispatcher over real SMTP and webhooks, on the context's engine and clock."""
    return Dispatcher(
        engine=ctx.engine, topic_prefix=settings.topic_prefix,
        mailer=SmtpMailer(host=settings.smtp_host, port=settings.smtp_port,
                          sender=settings.mail_from, starttls=settings.smtp_starttls,
                          timeout_s=settings.smtp_timeout_s),
        webhooks=HttpxWebhookPoster(http, egress=Egress(
            allow_loopback=settings.webhook_allow_loopback, timeout_s=settings.webhook_timeout_s)),
        clock=lambda: ctx.clock(),
        portal_base_url=settings.portal_base_url.rstrip("/"),
        link_ttl=timedelta(minutes=settings.sign_in_link_ttl_minutes),
        max_attempts=settings.delivery_max_attempts, backoff_s=settings.delivery_backoff_s,
        service_desk=settings.service_desk_email,
    )
