"""The matcher's child data at rest: a review's child, candidates, incident summary and what
officers wrote (the resolution's reasons and hand-overs), sealed per review
(services/common/sealed_columns.py; AAD the table, the review id and the column), with the
keyring the connection's engine carries."""

from __future__ import annotations

import logging
import types
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.crypto import KeyShredded, SealError, period_of
from services.common.problems import Problem
from services.common.sealed_columns import (
    INCIDENT_CLEAR,
    SEALED,
    aad,
    open_column,
    seal,
    seal_at,
    shredded_problem,
)
from services.common.sealing import sealing_of
from services.matcher.models import reviews

log = logging.getLogger(__name__)
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


async def refresh_seals(engine: AsyncEngine, *, now: datetime, days: int,
                        batch: int = 500) -> int:
    """Seal again, under this month's data key, every review still kept whose content is
    sealed under a month more than a month old: open ones (retention never erases them) and
    those resolved within the retention period. The retention owner shreds a month's key once
    the whole month is older than the retention period (services/common/retention.py), and a
    review open that long, or resolved late in it, must still be readable; a month's margin
    with a daily pass re-seals each long-lived review well before its key goes. Returns how
    many were sealed again."""
    r = reviews.c
    stale = f"dk1.{period_of(now - timedelta(days=31))}."  # tokens sort by their month
    kept = or_(r.status == "open", r.resolved_at >= now - timedelta(days=days))
    done = 0
    while True:
        async with engine.begin() as conn:
            found = (await conn.execute(
                select(reviews).where(kept, r.child[SEALED].astext < stale)
                .order_by(r.review_id).limit(batch).with_for_update(skip_locked=True))).all()
            for row in found:
                try:
                    opened = opened_review(conn, row)
                except (Problem, SealError):  # shredded or unreadable: nothing to keep alive
                    log.warning("review %s: content cannot be opened to seal it again",
                                row.review_id)
                    continue
                await conn.execute(update(reviews).where(r.review_id == row.review_id).values(
                    **sealed_review(conn, row.review_id, at=now, **{
                        name: getattr(opened, name) for name in _CLEAR})))
        done += len(found)
        if len(found) < batch:
            return done
