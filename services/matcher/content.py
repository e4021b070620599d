"""The matcher's child data at rest: a review's child, candidates, incident summary and what
officers wrote (the resolution's reasons and hand-overs), sealed per review
(services/common/sealed_columns.py; AAD the table, the review id and the column), with the
keyring the connection's engine carries."""

from __future__ import annotations

import types
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.crypto import KeyShredded
from services.common.sealed_columns import (
    INCIDENT_CLEAR,
    aad,
    open_column,
    seal,
    seal_at,
    shredded_problem,
)
from services.common.sealing import sealing_of
from services.matcher.models import reviews

REVIEWS = "matcher.reviews"
# what SQL and the notifier's chase read of a resolution: the outcome and the schools
RESOLUTION_CLEAR = ("status", "urns", "outcome")
_CLEAR: dict[str, tuple[str, ...]] = {"child": (), "candidates": (), "incident": INCIDENT_CLEAR,
                                      "resolution": RESOLUTION_CLEAR}


def sealed_review(conn: AsyncConnection, review_id: uuid.UUID, *, at: datetime,
                  **columns: Any) -> dict[str, Any]:
    """The review's content columns given (child, candidates, incident, resolution) as
    stored."""
    sealing = sealing_of(conn)
    return {name: seal(sealing, value, aad=aad(REVIEWS, review_id, column=name), at=at,
                       clear=_CLEAR[name]) for name, value in columns.items()}


def opened_review(conn: AsyncConnection, row: Any) -> Any:
    """A review row (attributes as the row's) with its content columns opened; 410 once its
    data key is shredded."""
    values, sealing = dict(row._mapping), sealing_of(conn)
    try:
        for name in _CLEAR:
            if name in values:
                values[name] = open_column(sealing, values[name],
                                           aad=aad(REVIEWS, values["review_id"], column=name))
    except KeyShredded:
        raise shredded_problem() from None
    return types.SimpleNamespace(**values)


async def reseal(engine: AsyncEngine, *, now: datetime, batch: int = 500) -> int:
    """Seal the reviews the matcher stored clear before sealing (`daybreak reseal`): any
    with a clear child, summary, candidates or officers' words; how many were sealed."""
    r = reviews.c
    clear_content = or_(
        r.child.has_key("given_name"), r.incident.has_key("summary"),
        and_(func.jsonb_typeof(r.candidates) == "array", r.candidates != literal([], JSONB)),
        r.resolution.has_any(array(["reason", "handover_reason", "handovers"])))
    done = 0
    while True:
        async with engine.begin() as conn:
            sealing = sealing_of(conn)
            found = (await conn.execute(select(reviews).where(clear_content).limit(batch)
                                        .with_for_update(skip_locked=True))).all()
            for row in found:
                await conn.execute(update(reviews).where(r.review_id == row.review_id).values(**{
                    name: seal_at(sealing, getattr(row, name), written_at=row.created_at,
                                  now=now, aad=aad(REVIEWS, row.review_id, column=name),
                                  clear=clear) for name, clear in _CLEAR.items()}))
        done += len(found)
        if len(found) < batch:
            return done
