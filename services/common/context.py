"""What every service's request handlers reach through `request.app.state.ctx`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import Request
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import UnitOfWork
from services.common.jwks import TokenVerifier
from services.common.settings import Settings


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
    extras: dict[str, Any] = field(default_factory=dict)
    verifier: TokenVerifier | None = None
    issuer: httpx.AsyncClient | None = None

    def uow(self) -> UnitOfWork:
        """A fresh unit of work."""
        return UnitOfWork(self.engine)

    def tokens(self) -> TokenVerifier:
        """The bearer-token verifier."""
        if self.verifier is None:
            raise RuntimeError("no token verifier is wired into this app")
        return self.verifier

    def identity(self) -> httpx.AsyncClient:
        """The client to the identity service."""
        if self.issuer is None:
            raise RuntimeError("no identity client is wired into this app")
        return self.issuer


async def get_ctx(request: Request) -> AppContext:
    """FastAPI dependency: the app's context."""
    ctx: AppContext = request.app.state.ctx
    return ctx
