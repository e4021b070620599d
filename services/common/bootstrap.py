"""What every service's main.py wires the same way: its workers and its lifespan."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Protocol

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.registry import EVENT_TYPES
from services.common.app import Lifespan
from services.common.events import Apply, HasEngine, apply_record, apply_records
from services.common.kafka import BatchHandler
from services.common.kafka_access import ServiceAccess
from services.common.runner import Handler, Worker
from services.common.sealing import sealing_of
from services.common.settings import Settings


def build_worker(
    access: ServiceAccess, settings: Settings, *, engine: AsyncEngine, source: str,
    handle: Handler, handle_batch: BatchHandler | None = None, relay: bool = True,
) -> Worker:
    """A worker on the group and topics `access` names, relaying the outbox rows of `source`;
    a group off the alert path fetches at the background wait."""
    return Worker(
        kafka=settings.kafka(background=not access.alert_path), engine=engine,
        source=settings.topic(source),
        group_id=access.group_id(settings.topic_prefix),
        consume=[settings.topic(t) for t in access.consumes],
        produce=[settings.topic(t) for t in access.produces],
        handle=handle, handle_batch=handle_batch, layout=settings.topic_layout(), relay=relay,
        relay_lease_s=settings.outbox_lease_seconds,
    )


def table_worker(
    access: ServiceAccess, settings: Settings, *, engine: AsyncEngine, source: str,
    handlers: Mapping[str, Apply], deps: HasEngine, relay: bool = True,
) -> Worker:
    """`build_worker` dispatching each record (and each batch) through a handler table; one
    that handles child data fails here, at start-up, if the keystore cannot be read."""
    if any(cls.sealed_paths for (name, _), cls in EVENT_TYPES.items() if name in handlers):
        sealing_of(engine).check()
    return build_worker(
        access, settings, engine=engine, source=source, relay=relay,
        handle=functools.partial(apply_record, handlers=handlers, deps=deps),
        handle_batch=functools.partial(apply_records, handlers=handlers, deps=deps),
    )


class Background(Protocol):
    """What runs beside the app: a Worker, a revocation feed."""

    def start(self) -> None:
        """Start in the background."""

    async def stop(self) -> None:
        """Stop and wait for it."""


@asynccontextmanager
async def running(*workers: Background) -> AsyncIterator[None]:
    """The workers started in order, then stopped in reverse."""
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for worker in reversed(workers):
            await worker.stop()


def service_lifespan(
    engine: AsyncEngine, *workers: Background,
    inner: Callable[[], AbstractAsyncContextManager[None]] | None = None,
) -> Lifespan:
    """Start the workers, then enter `inner`; leave it, stop the workers, dispose the engine.

    `inner` is the service's own background work (the notifier's dispatcher): it stops
    before the workers do, so whatever it stages is still relayed.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with running(*workers), inner() if inner else nullcontext():
                yield
        finally:
            await engine.dispose()

    return lifespan
