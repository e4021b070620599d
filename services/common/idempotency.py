"""Processed-event bookkeeping: a consumer handles each `event_id` once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.models import processed_events


async def claim_event(conn: AsyncConnection, *, consumer: str, event_id: uuid.UUID) -> bool:
    """Record the event as processed in the caller's transaction; False if it already was."""
    result = await conn.execute(
        insert(processed_events)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    )
    return result.first() is not None


async def claim_events(conn: AsyncConnection, *, consumer: str,
                       event_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """`claim_event` for many in one statement: the ids not processed before (now claimed).

    An executemany (SQLAlchemy's insertmanyvalues: one INSERT of up to 1,000 rows a round
    trip), so the statement compiles once however many ids a poll brings, where a multi-row
    VALUES compiled afresh for every count."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    result = await conn.execute(
        insert(processed_events).on_conflict_do_nothing()
        .returning(processed_events.c.event_id),
        [{"consumer": consumer, "event_id": event_id} for event_id in ids])
    return set(result.scalars())
