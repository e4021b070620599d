"""Identity wiring: the accounts tables, the signing keys, the token and session endpoints."""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common.app import create_app
from services.common.bootstrap import service_lifespan
from services.common.db import service_engine
from services.common.settings import Settings
from services.identity.api import IdentityContext, router
from services.identity.settings import identity_settings

PORT = 8005
SERVICE: Final = "identity"


def build_app(settings: Settings | None = None) -> FastAPI:
    """The identity app with real adapters."""
    settings = identity_settings(settings)
    ctx = IdentityContext(
        settings=settings, registry=CollectorRegistry(), keyset=settings.keyset(),
        engine=service_engine(settings, SERVICE),
    )
    app = create_app(title="Daybreak identity", service=SERVICE, ctx=ctx,
                     lifespan=service_lifespan(ctx.engine))
    app.include_router(router)
    return app
