"""Processed-event bookkeeping: a consumer handles each `event_id` once."""

from __future__ import annotations

import uuid

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
