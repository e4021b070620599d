"""Identity wiring: the accounts tables, the signing keys, the token and session endpoints,
and the relay that publishes the sessions it ends."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.app import create_app
from services.common.bootstrap import build_worker, service_lifespan
from services.common.db import service_engine
from services.common.errors import is_transient
from services.common.jwks import TokenVerifier
from services.common.kafka_access import IDENTITY
from services.common.retention import run_daily
from services.common.runner import in_background
from services.common.settings import Settings
from services.identity.admin_api import router as admin_router
from services.identity.api import IdentityContext, public_keys, router
from services.identity.keys import Keyset
from services.identity.security_events import run_retention
from services.identity.security_events_api import router as security_events_router
from services.identity.sessions import SOURCE, SessionTable
from services.identity.settings import identity_settings
from services.identity.totp_vault import TotpVault, seal_legacy_rows, totp_vault

log = logging.getLogger(__name__)
PORT = 8005
SERVICE: Final = "identity"


def build_app(settings: Settings | None = None) -> FastAPI:
    """The identity app with real adapters."""
    settings = identity_settings(settings)
    keyset = settings.keyset()
    vault = totp_vault(settings)  # fail fast: no sign-in works without it
    engine = service_engine(settings, SERVICE)
    verifier = own_verifier(settings, keyset)
    verifier.revocations = SessionTable(engine)  # its own table: refused at once
    # consumes nothing: relays the revocations it stages (services/identity/sessions.py)
    relay = build_worker(IDENTITY, settings, engine=engine, source=SOURCE,
                         handle=_consumes_nothing)
    ctx = IdentityContext(
        settings=settings, registry=CollectorRegistry(), keyset=keyset, vault=vault,
        engine=engine, verifier=verifier, sign_in=settings.sign_in_policy(),
        wake_relay=relay.wake_relay,
    )
    app = create_app(title="Daybreak identity", service=SERVICE, ctx=ctx,
                     lifespan=service_lifespan(ctx.engine, relay, inner=startup(ctx, vault)))
    app.include_router(router)
    app.include_router(admin_router)
    app.include_router(security_events_router)
    return app


def daily_purge(ctx: IdentityContext) -> AbstractAsyncContextManager[None]:
    """Security events past their period, and spent sign-in failures, purged daily."""
    settings = identity_settings(ctx.settings)

    async def once() -> None:
        await run_retention(ctx.engine, now=ctx.clock(),
                            days=settings.security_events_retention_days,
                            window=ctx.sign_in.budgets.window)

    return in_background(run_daily(once, interval_s=settings.retention_interval_s))


def sealing(engine: AsyncEngine, vault: TotpVault
            ) -> Callable[[], AbstractAsyncContextManager[None]]:
    """At startup, seal the TOTP secrets of rows written before they were sealed (0020)."""

    @asynccontextmanager
    async def run() -> AsyncIterator[None]:
        try:
            await seal_legacy_rows(engine, vault)
        except Exception as exc:
            if not is_transient(exc):
                raise
            # the database is away: sign-in seals each legacy row it reads meanwhile
            log.warning("legacy TOTP secrets not sealed yet", extra={
                "exc_type": type(exc).__name__})
        yield

    return run


def startup(ctx: IdentityContext, vault: TotpVault
            ) -> Callable[[], AbstractAsyncContextManager[None]]:
    """The legacy TOTP secrets sealed first, then the daily purge for as long as it serves."""
    seal_legacy = sealing(ctx.engine, vault)

    @asynccontextmanager
    async def run() -> AsyncIterator[None]:
        async with seal_legacy(), daily_purge(ctx):
            yield

    return run


def own_verifier(settings: Settings, keyset: Keyset) -> TokenVerifier:
    """Admins' tokens for the admin API, checked against the issuer's own public keys."""
    return TokenVerifier(audience=SERVICE, issuer=settings.jwt_issuer,
                         static=public_keys(keyset))


async def _consumes_nothing(*_: object) -> None:
    raise AssertionError("the identity worker consumes no topic")
