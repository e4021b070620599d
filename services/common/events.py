"""Applying consumed events inside the caller's transaction: one per message, or one per poll."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import Envelope, RawEnvelope, typed_envelope
from schemas.registry import EVENT_TYPES
from services.common.db import UnitOfWork
from services.common.logs import bind_event
from services.common.sealing import sealing_of

Apply = Callable[..., Awaitable[None]]
PER_POLL = "_daybreak_per_poll"


class HasEngine(Protocol):
    """Handler dependencies that carry the service's engine."""

    engine: AsyncEngine


def transactional(apply: Apply) -> Apply:
    """Let `apply(envelope, *, deps, uow)` run in the caller's unit of work, or in its own
    transaction when called without one (a single event, as tests and replays do)."""

    @functools.wraps(apply)
    async def run(envelope: Envelope[Any], *, deps: HasEngine,
                  uow: UnitOfWork | None = None) -> None:
        if uow is not None:
            await apply(envelope, deps=deps, uow=uow)
            return
        async with UnitOfWork(deps.engine) as own:
            await apply(envelope, deps=deps, uow=own)
            await own.commit()

    return run


def per_poll(apply_many: Apply) -> Apply:
    """Mark `apply_many(envelopes, *, deps, uow)` as taking a run of same-type events at once
    (a set-based handler: a constant number of statements for the run); it runs in the
    caller's unit of work, or in its own transaction when called without one."""

    run = transactional(apply_many)  # the same unit-of-work rule, with a list
    setattr(run, PER_POLL, True)
    return run


def runs_of(envelopes: Iterable[Envelope[Any]], handlers: Mapping[str, Apply]
            ) -> list[list[Envelope[Any]]]:
    """Consecutive envelopes grouped by the handler that takes them, order kept: a run for a
    per-poll handler (several types may share one) is one call; any other handler's events
    come one per run."""
    out: list[list[Envelope[Any]]] = []
    for envelope in envelopes:
        handler = handlers[envelope.type]
        if (out and getattr(handler, PER_POLL, False)
                and handlers[out[-1][0].type] is handler):
            out[-1].append(envelope)
        else:
            out.append([envelope])
    return out


async def apply_records(
    records: list[ConsumerRecord[bytes, bytes]], handlers: Mapping[str, Apply], *,
    deps: HasEngine,
) -> None:
    """Apply a partition's poll in one transaction, in order; unknown event types are skipped.

    Any failure rolls the whole poll back; the consumer loop then retries record by record, so
    a poison message is dead-lettered alone.
    """
    async with UnitOfWork(deps.engine) as uow:
        await apply_values([record.value for record in records], handlers, deps=deps, uow=uow)
        await uow.commit()


async def apply_values(
    values: Iterable[bytes], handlers: Mapping[str, Apply], *, deps: HasEngine,
    uow: UnitOfWork,
) -> int:
    """Apply wire values in the caller's unit of work, in order, skipping unknown event types
    (all parsed first, so a malformed one applies none); returns how many were handled."""
    sealing = sealing_of(uow.conn)  # opens the child data (schemas/sealed.py) of those handled
    raws = [RawEnvelope.model_validate_json(value) for value in values]
    envelopes = [typed_envelope(sealing.opened(raw), EVENT_TYPES)
                 for raw in raws if raw.type in handlers]
    for run in runs_of(envelopes, handlers):
        handler = handlers[run[0].type]
        bind_event(run[0] if len(run) == 1 else None)
        if getattr(handler, PER_POLL, False):
            await handler(run, deps=deps, uow=uow)
        else:
            await handler(run[0], deps=deps, uow=uow)
    return len(envelopes)


async def apply_record(
    record: ConsumerRecord[bytes, bytes], handlers: Mapping[str, Apply], *, deps: HasEngine,
) -> None:
    """Apply one record in its own transaction (the consumer loop's one-by-one fallback)."""
    await apply_records([record], handlers, deps=deps)
