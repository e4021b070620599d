"""What every service's request handlers reach through `request.app.state.ctx`.

Each service extends `AppContext` with its own named fields (`NotifierContext`, ...) and
its routes ask for it through a typed dependency made by `context_of`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import httpx
from fastapi import Request
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import UnitOfWork
from services.common.jwks import TokenVerifier
from services.common.settings import Settings

Refresher = Callable[[], Awaitable[None]]
C = TypeVar("C", bound="AppContext")


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass
class AppContext:
    """Adapters wired once in main.py; tests swap the clock or the engine.

    `verifier` checks bearer tokens for this service's audience (create_app builds it from
    the settings when main.py gives none); `issuer` is the HTTP client to the identity
    service that sign-ins are relayed to (tests give it an ASGITransport to an in-process
    identity app).
    """

    settings: Settings
    engine: AsyncEngine
    registry: CollectorRegistry
    clock: Callable[[], datetime] = utc_now
    verifier: TokenVerifier | None = None
    issuer: httpx.AsyncClient | None = None
    # gauges brought up to date before each /metrics scrape (services.common.metrics)
    refreshers: list[tuple[str, Refresher]] = field(default_factory=list)
    refresh_failures: Counter | None = None
    # ingest's admin API, which the matcher's readiness asks with the admin's own token
    ingest_api: httpx.AsyncClient | None = None

    def uow(self) -> UnitOfWork:
        """A fresh unit of work."""
        return UnitOfWork(self.engine)

    def tokens(self) -> TokenVerifier:
        """The bearer-token verifier."""
        if self.verifier is None:
            raise RuntimeError("no token verifier is wired into this app")
        return self.verifier

    def ingest(self) -> httpx.AsyncClient:
        """The client to ingest (`DAYBREAK_INGEST_URL`; tests give an in-process one)."""
        if self.ingest_api is None:
            self.ingest_api = httpx.AsyncClient(base_url=self.settings.ingest_url,
                                                timeout=self.settings.matcher_timeout_s)
        return self.ingest_api

    def identity(self) -> httpx.AsyncClient:
        """The client to the identity service."""
        if self.issuer is None:
            raise RuntimeError("no identity client is wired into this app")
        return self.issuer


async def get_ctx(request: Request) -> AppContext:
    """FastAPI dependency: the app's context."""
    ctx: AppContext = request.app.state.ctx
    return ctx


def context_in(request: Request, kind: type[C]) -> C:
    """The app's context, which must be a `kind` (a service's own context type)."""
    ctx = request.app.state.ctx
    if not isinstance(ctx, kind):
        raise TypeError(f"this route needs a {kind.__name__}, the app has {type(ctx).__name__}")
    return ctx


def context_of(kind: type[C]) -> Callable[[Request], Awaitable[C]]:
    """A FastAPI dependency: the app's context, which must be a `kind`."""

    async def get(request: Request) -> C:
        return context_in(request, kind)

    get.__name__ = f"get_{kind.__name__}"
    return get
