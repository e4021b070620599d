"""Identity wiring: the accounts tables, the signing keys, the token and session endpoints."""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common.app import create_app
from services.common.bootstrap import service_lifespan
from services.common.db import service_engine
from services.common.jwks import TokenVerifier
from services.common.settings import Settings
from services.identity.admin_api import router as admin_router
from services.identity.api import IdentityContext, router
from services.identity.keys import Keyset
from services.identity.settings import identity_settings

PORT = 8005
SERVICE: Final = "identity"


def build_app(settings: Settings | None = None) -> FastAPI:
    """The identity app with real adapters."""
    settings = identity_settings(settings)
    keyset = settings.keyset()
    ctx = IdentityContext(
        settings=settings, registry=CollectorRegistry(), keyset=keyset,
        engine=service_engine(settings, SERVICE), verifier=own_verifier(settings, keyset),
    )
    app = create_app(title="Daybreak identity", service=SERVICE, ctx=ctx,
                     lifespan=service_lifespan(ctx.engine))
    app.include_router(router)
    app.include_router(admin_router)
    return app


def own_verifier(settings: Settings, keyset: Keyset) -> TokenVerifier:
    """Admins' tokens for the admin API, checked against the issuer's own public keys."""
    return TokenVerifier(audience=SERVICE, issuer=settings.jwt_issuer,
                         static={kid: key.public_key() for kid, key in zip(
                             keyset.kids, keyset.keys, strict=True)})
