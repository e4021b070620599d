"""An in-process identity service on chosen sign-in settings, called from chosen addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from services.common.db import standalone_uow
from services.common.settings import Settings
from services.identity.api import IdentityContext
from services.identity.main import build_app as build_identity
from services.identity.models import security_events
from services.identity.passwords import SecretHasher, subject_hash
from services.identity.settings import IdentitySettings
from tests.support.tokens import identity_settings_for

# what the services default to (services/identity/settings.py), not the tests' wide budget
REAL_BUDGETS = {"login_max_failures": 5, "login_address_max_failures": 20,
                "login_account_max_failures": 100}


def signin_settings(settings: Settings, **changes: Any) -> IdentitySettings:
    """The session's identity settings with the real failure budgets, and `changes`."""
    return identity_settings_for(settings).model_copy(update=REAL_BUDGETS | changes)


@asynccontextmanager
async def identity_app(
    settings: IdentitySettings, *, clock: Callable[[], datetime] | None = None,
    hasher: SecretHasher | None = None,
) -> AsyncIterator[FastAPI]:
    """The identity app, started, on the clock and hasher given (else its own)."""
    app = build_identity(settings)
    ctx: IdentityContext = app.state.ctx
    if clock is not None:
        ctx.clock = clock
    if hasher is not None:
        ctx.sign_in = replace(ctx.sign_in, hasher=hasher)
    async with app.router.lifespan_context(app):
        yield app


def client_from(app: FastAPI, address: str, base_url: str = "http://identity"
                ) -> httpx.AsyncClient:
    """A client to the app whose requests come from `address` (the TCP peer it sees)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                             base_url=base_url)


async def events_for(settings: Settings, login: str) -> list[Any]:
    """The security events of one login (`user:<email>` or `client:<id>`), oldest first."""
    async with standalone_uow(settings, "identity") as uow:
        rows = await uow.conn.execute(select(security_events).where(
            security_events.c.subject_hash == subject_hash(login)).order_by(
                security_events.c.id))
        return list(rows.all())
