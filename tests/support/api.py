"""Run a service app in-process with its lifespan, and get credentials for it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pyotp
from fastapi import FastAPI

from services.common.accounts import create_client, create_user
from services.common.db import standalone_uow
from services.common.settings import Settings


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app, with the app's startup and shutdown run."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def new_police_client(settings: Settings, force: str) -> tuple[str, str]:
    """Create a client for a force in the test database."""
    async with standalone_uow(settings, "ingest") as uow:
        new = await create_client(uow.conn, force_code=force)
        await uow.commit()
    return new.client_id, new.client_secret


async def new_user(settings: Settings, **kwargs: Any) -> tuple[str, str]:
    """Create a user; returns (user_id, totp_secret)."""
    async with standalone_uow(settings, "notifier") as uow:
        new = await create_user(uow.conn, **kwargs)
        await uow.commit()
    return str(new.user_id), pyotp.parse_uri(new.totp_uri).secret


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
