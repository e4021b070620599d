"""The notifier's copy of the registry: schools, LAs and calendars from `registry.v1`.

Each event carries its entity's whole state, so applying one is an upsert (or, for a
calendar, a replacement) that is safe to repeat: replaying the compacted topic from the
start rebuilds the copy, and no event is skipped as already seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from sqlalchemy import delete, insert
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.directory import LocalAuthorityChanged, SchoolCalendarChanged, SchoolChanged
from schemas.envelope import Envelope
from services.common.db import UnitOfWork
from services.common.events import apply_values, transactional
from services.common.kafka import read_to_end
from services.common.settings import KafkaConnection
from services.notifier.models import local_authorities, school_calendar_days, schools


@dataclass
class DirectoryDeps:
    """The notifier's engine: all the copy needs."""

    engine: AsyncEngine


@transactional
async def on_school_changed(envelope: Envelope[Any], *, deps: DirectoryDeps,
                            uow: UnitOfWork) -> None:
    """Keep the school as the registry now has it."""
    event: SchoolChanged = envelope.payload
    values = event.model_dump(mode="python", exclude={"urn"}) | {
        "changed_at": envelope.occurred_at}
    await uow.conn.execute(upsert(schools).values(urn=event.urn, **values)
                           .on_conflict_do_update(index_elements=["urn"], set_=values))


@transactional
async def on_local_authority_changed(envelope: Envelope[Any], *, deps: DirectoryDeps,
                                     uow: UnitOfWork) -> None:
    """Keep the LA, its contacts ("safeguarding", "review", "duty_manager") and its
    safety-net settings as the registry now has them."""
    event: LocalAuthorityChanged = envelope.payload
    values = event.model_dump(mode="python", exclude={"la_code"}) | {
        "changed_at": envelope.occurred_at}
    await uow.conn.execute(upsert(local_authorities).values(la_code=event.la_code, **values)
                           .on_conflict_do_update(index_elements=["la_code"], set_=values))


@transactional
async def on_calendar_changed(envelope: Envelope[Any], *, deps: DirectoryDeps,
                              uow: UnitOfWork) -> None:
    """Replace the school's calendar overrides with the ones the registry now holds."""
    event: SchoolCalendarChanged = envelope.payload
    await uow.conn.execute(delete(school_calendar_days)
                           .where(school_calendar_days.c.urn == event.urn))
    if event.days:
        await uow.conn.execute(insert(school_calendar_days), [
            {"urn": event.urn, "day": d.day, "kind": d.kind} for d in event.days])


HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "SchoolChanged": on_school_changed,
    "LocalAuthorityChanged": on_local_authority_changed,
    "SchoolCalendarChanged": on_calendar_changed,
}


async def rebuild(engine: AsyncEngine, *, kafka: KafkaConnection, topic: str) -> int:
    """Replace the copy with a replay of `topic` from its start to its current end, in one
    transaction (readers see the old copy until it commits); returns the records applied."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        records = await read_to_end(consumer, topic)
    finally:
        await consumer.stop()
    async with UnitOfWork(engine) as uow:
        for table in (school_calendar_days, schools, local_authorities):
            await uow.conn.execute(delete(table))
        applied = await apply_values([r.value for r in records], HANDLERS,
                                     deps=DirectoryDeps(engine), uow=uow)
        await uow.commit()
    return applied
