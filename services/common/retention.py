"""Content retention: erase child data from old notifications and reviews, keep the metadata.

A notification's content is judged by its `created_at` (when Daybreak received it), not the
incident's `occurred_at`: a late report must still reach the school in full. A review is
judged by `resolved_at` (resolved or withdrawn); open reviews are never touched. Erasure keeps
each row's ids, school, state and timestamps, so audit entries that name them still resolve.
The live roll (`pupils`) is not content and is never purged here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, String, Uuid, and_, column, delete, func, literal, table, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

log = logging.getLogger(__name__)
DAY_S = 24 * 60 * 60.0
# incident facts that identify no one: kept so a purged row still reads as an incident
KEPT_INCIDENT_KEYS = ("incident_id", "force_code", "occurred_at", "incident_type")
PURGED_MARK = "purged_at"

# Lightweight views of tables the notifier and the matcher own: common code may not import
# another service's models, and retention needs only these columns.
_notifications = table(
    "notifications", column("id", Uuid), column("incident", JSONB),
    column("created_at", DateTime(timezone=True)), schema="notifier")
_notification_children = table("notification_children", column("notification_id", Uuid),
                               schema="notifier")
_reviews = table(
    "reviews", column("review_id", Uuid), column("status", String), column("child", JSONB),
    column("incident", JSONB), column("candidates", JSONB),
    column("resolved_at", DateTime(timezone=True)), schema="matcher")


def content_cutoff(now: datetime, days: int) -> datetime:
    """The instant before which content has passed its retention period."""
    return now - timedelta(days=days)


def _stub(incident: ColumnElement[Any], now: datetime) -> ColumnElement[Any]:
    kept = [part for key in KEPT_INCIDENT_KEYS for part in (literal(key), incident[key])]
    return func.jsonb_strip_nulls(func.jsonb_build_object(
        *kept, literal(PURGED_MARK), literal(now.isoformat())))


async def purge_notifications(conn: AsyncConnection, *, cutoff: datetime, now: datetime) -> int:
    """Erase old notifications' incident content and delete their child rows; returns how many."""
    n = _notifications.c
    ids = list((await conn.execute(
        update(_notifications)
        .where(n.created_at < cutoff, ~n.incident.has_key(PURGED_MARK))
        .values(incident=_stub(n.incident, now))
        .returning(n.id))).scalars())
    if ids:
        await conn.execute(delete(_notification_children).where(
            _notification_children.c.notification_id.in_(ids)))
    return len(ids)


async def purge_reviews(conn: AsyncConnection, *, cutoff: datetime, now: datetime) -> int:
    """Erase the child, candidates and incident detail of long-closed reviews; returns how many."""
    r = _reviews.c
    result = await conn.execute(
        update(_reviews)
        .where(and_(r.status != "open", r.resolved_at < cutoff),
               ~r.incident.has_key(PURGED_MARK))
        .values(child=literal({}, JSONB), candidates=literal([], JSONB),
                incident=_stub(r.incident, now))
        .returning(r.review_id))
    return len(result.all())


async def run_daily(
    purge: Callable[[], Awaitable[object]], *, interval_s: float = DAY_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Call `purge` every `interval_s` (first after one interval) until cancelled."""
    while True:
        await sleep(interval_s)
        try:
            await purge()
        except Exception:  # a failed run is retried tomorrow; the service stays up
            log.exception("retention purge failed")
