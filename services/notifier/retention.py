"""The notifier's retention: old notifications lose their child content, the rows stay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.disclosures import PurgeTrigger
from services.common.retention import (
    PURGED_MARK,
    purge_and_announce,
    shred_expired_keys,
    stub_incident,
)
from services.notifier.actions import notification_actions
from services.notifier.models import notification_children, notifications

SERVICE = "notifier"


async def purge_notifications(conn: AsyncConnection, *, cutoff: datetime, now: datetime) -> int:
    """Erase old notifications' incident content, delete their child rows, and erase what the
    school wrote about them (the actions' notes, the free-text action taken: a school's words
    may name the child; the action types and dates stay); returns how many."""
    n = notifications.c
    ids = list((await conn.execute(
        update(notifications)
        .where(n.created_at < cutoff, ~n.incident.has_key(PURGED_MARK))
        .values(incident=stub_incident(n.incident, now), action_taken=None)
        .returning(n.id))).scalars())
    if ids:
        await conn.execute(delete(notification_children).where(
            notification_children.c.notification_id.in_(ids)))
        await conn.execute(update(notification_actions).where(
            notification_actions.c.notification_id.in_(ids)).values(note=None))
    return len(ids)


async def run_retention(engine: AsyncEngine, *, topic_prefix: str, days: int, now: datetime,
                        trigger: PurgeTrigger) -> int:
    """Purge (with the published outbox rows) and announce it in one transaction, then, as
    the owner of the data keys' retention, shred the keys of the months past it; returns
    how many content rows were erased."""
    count = await purge_and_announce(engine, purge_notifications, service=SERVICE,
                                     kind="notifications", topic_prefix=topic_prefix, days=days,
                                     now=now, trigger=trigger)
    await shred_expired_keys(engine, service=SERVICE, topic_prefix=topic_prefix, days=days,
                             now=now, trigger=trigger)
    return count
