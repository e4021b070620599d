"""Identity wiring: the accounts tables, the signing keys, the token and session endpoints,
and the relay that publishes the sessions it ends."""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common.app import create_app
from services.common.bootstrap import build_worker, service_lifespan
from services.common.db import service_engine
from services.common.jwks import TokenVerifier
from services.common.kafka_access import IDENTITY
from services.common.settings import Settings
from services.identity.admin_api import router as admin_router
from services.identity.api import IdentityContext, public_keys, router
from services.identity.keys import Keyset
from services.identity.sessions import SOURCE, SessionTable
from services.identity.settings import identity_settings

PORT = 8005
SERVICE: Final = "identity"


def build_app(settings: Settings | None = None) -> FastAPI:
    """The identity app with real adapters."""
    settings = identity_settings(settings)
    keyset = settings.keyset()
    engine = service_engine(settings, SERVICE)
    verifier = own_verifier(settings, keyset)
    verifier.revocations = SessionTable(engine)  # its own table: refused at once
    # consumes nothing: relays the revocations it stages (services/identity/sessions.py)
    relay = build_worker(IDENTITY, settings, engine=engine, source=SOURCE,
                         handle=_consumes_nothing)
    ctx = IdentityContext(
        settings=settings, registry=CollectorRegistry(), keyset=keyset, engine=engine,
        verifier=verifier, wake_relay=relay.wake_relay,
    )
    app = create_app(title="Daybreak identity", service=SERVICE, ctx=ctx,
                     lifespan=service_lifespan(ctx.engine, relay))
    app.include_router(router)
    app.include_router(admin_router)
    return app


def own_verifier(settings: Settings, keyset: Keyset) -> TokenVerifier:
    """Admins' tokens for the admin API, checked against the issuer's own public keys."""
    return TokenVerifier(audience=SERVICE, issuer=settings.jwt_issuer,
                         static=public_keys(keyset))


async def _consumes_nothing(*_: object) -> None:
    raise AssertionError("the identity worker consumes no topic")
