"""What every service's request handlers reach through `request.app.state.ctx`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import UnitOfWork
from services.common.settings import Settings


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass
class AppContext:
    """Adapters wired once in main.py; tests swap the clock or the engine."""

    settings: Settings
    engine: AsyncEngine
    registry: CollectorRegistry
    clock: Callable[[], datetime] = utc_now
    extras: dict[str, Any] = field(default_factory=dict)

    def uow(self) -> UnitOfWork:
        """A fresh unit of work."""
        return UnitOfWork(self.engine)


async def get_ctx(request: Request) -> AppContext:
    """FastAPI dependency: the app's context."""
    ctx: AppContext = request.app.state.ctx
    return ctx
