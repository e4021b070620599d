"""The matcher's retention: long-closed reviews lose their child content, the rows stay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, and_, literal, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.disclosures import PurgeTrigger
from services.common.retention import PURGED_MARK, purge_and_announce, stub_incident
from services.common.sealed_columns import SEALED
from services.matcher.content import refresh_seals
from services.matcher.models import reviews

SERVICE = "matcher"
# what officers wrote about the child when resolving or handing over (the outcome, the
# schools and the LAs stay)
RESOLUTION_CONTENT = ["reason", "handover_reason", "handovers", SEALED]  # sealed: all three


async def purge_reviews(conn: AsyncConnection, *, cutoff: datetime, now: datetime) -> int:
    """Erase the child, candidates, incident detail and officers' reasons of long-closed
    reviews; returns how many."""
    r = reviews.c
    result = await conn.execute(
        update(reviews)
        .where(and_(r.status != "open", r.resolved_at < cutoff),
               ~r.incident.has_key(PURGED_MARK))
        .values(child=literal({}, JSONB), candidates=literal([], JSONB),
                incident=stub_incident(r.incident, now),
                resolution=r.resolution.op("-", return_type=JSONB)(
                    literal(RESOLUTION_CONTENT, ARRAY(Text))))
        .returning(r.review_id))
    return len(result.all())


async def run_retention(engine: AsyncEngine, *, topic_prefix: str, days: int, now: datetime,
                        trigger: PurgeTrigger) -> int:
    """Seal the long-lived reviews again under this month's key (before the retention owner
    shreds the old one), then purge (with the published outbox rows) and announce it in one
    transaction; returns how many content rows were erased."""
    await refresh_seals(engine, now=now, days=days)
    return await purge_and_announce(engine, purge_reviews, service=SERVICE, kind="reviews",
                                    topic_prefix=topic_prefix, days=days, now=now,
                                    trigger=trigger)
