"""Processed-event bookkeeping: a consumer handles each `event_id` once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import ARRAY, String, Uuid, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.models import processed_events

# the poll's ids as one array parameter: the same SQL however many a poll brings, so it is
# parsed and planned once per connection (a multi-row VALUES, or SQLAlchemy's insertmanyvalues,
# renders a placeholder per id, and asyncpg prepares each count's text anew)
_CLAIM = (insert(processed_events)
          .from_select(["consumer", "event_id"], select(
              bindparam("consumer", type_=String),
              func.unnest(bindparam("ids", type_=ARRAY(Uuid)))))
          .on_conflict_do_nothing()
          .returning(processed_events.c.event_id))


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
    """`claim_event` for many in one statement: the ids not processed before (now claimed)."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    result = await conn.execute(_CLAIM, {"consumer": consumer, "ids": ids})
    return set(result.scalars())
