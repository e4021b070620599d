"""Run a service app in-process with its lifespan, an identity service for it, credentials."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pyotp
from fastapi import FastAPI

from services.common.db import standalone_uow
from services.common.settings import Settings
from services.identity.accounts import create_client, create_user
from services.identity.main import build_app as build_identity
from services.identity.totp_vault import totp_vault
from tests.support.incidents import DEFAULT_LA, register_force
from tests.support.tokens import identity_settings_for


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app, with the app's startup and shutdown run."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


class _InProcess(httpx.ASGITransport):
    """An ASGI transport that also disposes the app's engine when its client is closed."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app=app)
        self.served = app

    async def aclose(self) -> None:
        await self.served.state.ctx.engine.dispose()


def issuer_for(settings: Settings, *, clock: Callable[[], datetime] | None = None
               ) -> httpx.AsyncClient:
    """A client to an in-process identity service on the settings' database, signing with the
    session's test keys: give it to a service's build_app(issuer=...), which closes it."""
    app = build_identity(identity_settings_for(settings))
    if clock is not None:
        app.state.ctx.clock = clock
    return httpx.AsyncClient(transport=_InProcess(app), base_url="http://identity")


async def new_police_client(
    settings: Settings, force: str, *, default_la: str | None = DEFAULT_LA
) -> tuple[str, str]:
    """Create a client for a force in the test database, registering the force with
    `default_la` as its default LA first (None: leave the force as it is, maybe unknown)."""
    if default_la is not None:
        await register_force(settings, force, default_la)
    async with standalone_uow(settings, "identity") as uow:
        new = await create_client(uow.conn, force_code=force)
        await uow.commit()
    return new.client_id, new.client_secret


async def new_user(settings: Settings, **kwargs: Any) -> tuple[str, str]:
    """Create a user; returns (user_id, totp_secret)."""
    async with standalone_uow(settings, "identity") as uow:
        new = await create_user(uow.conn, vault=totp_vault(settings), **kwargs)
        await uow.commit()
    return str(new.user_id), pyotp.parse_uri(new.totp_uri).secret


def metrics_auth() -> dict[str, str]:
    """The Authorization header /metrics wants: the test session's DAYBREAK_METRICS_TOKEN
    (tests/conftest.py), which every Settings built in tests reads."""
    return {"Authorization": f"Bearer {os.environ['DAYBREAK_METRICS_TOKEN']}"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    """An HTTP Basic authorisation header."""
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def police_token(client: httpx.AsyncClient, client_id: str, secret: str) -> str:
    """A bearer token from the OAuth2 endpoint."""
    resp = await client.post("/v1/token", data={"grant_type": "client_credentials"},
                             headers=basic(client_id, secret))
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["access_token"]
    return token
