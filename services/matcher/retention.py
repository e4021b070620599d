"""The matcher's retention: long-closed reviews lose their child content, the rows stay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, literal, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.disclosures import PurgeTrigger
from services.common.db import UnitOfWork
from services.common.retention import PURGED_MARK, announce_purge, content_cutoff, stub_incident
from services.matcher.models import reviews

SERVICE = "matcher"


async def purge_reviews(conn: AsyncConnection, *, cutoff: datetime, now: datetime) -> int:
    """Erase the child, candidates and incident detail of long-closed reviews; returns how many."""
    r = reviews.c
    result = await conn.execute(
        update(reviews)
        .where(and_(r.status != "open", r.resolved_at < cutoff),
               ~r.incident.has_key(PURGED_MARK))
        .values(child=literal({}, JSONB), candidates=literal([], JSONB),
                incident=stub_incident(r.incident, now))
        .returning(r.review_id))
    return len(result.all())


async def run_retention(engine: AsyncEngine, *, topic_prefix: str, days: int, now: datetime,
                        trigger: PurgeTrigger) -> int:
    """Purge and announce the purge in one transaction; returns how many were erased."""
    cutoff = content_cutoff(now, days)
    async with UnitOfWork(engine) as uow:
        count = await purge_reviews(uow.conn, cutoff=cutoff, now=now)
        if count:
            await announce_purge(uow.conn, topic_prefix=topic_prefix, service=SERVICE,
                                 kind="reviews", count=count, cutoff=cutoff, days=days,
                                 now=now, trigger=trigger)
        await uow.commit()
    return count
