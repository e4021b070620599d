"""Staging `notifications.v1` events in the notifier's outbox, in the transaction that makes
the change they announce (so a receipt never runs ahead of, or behind, the notifier's tables).

Every lifecycle event goes through `stage`: keyed by incident id (never a name), published by
the outbox relay under the notifier's own principal.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import topics
from schemas.envelope import wrap
from schemas.notifications import LifecycleEvent
from services.common.outbox import add_all_to_outbox
from services.notifier.outgoing import OUTBOX_SOURCE


async def stage(conn: AsyncConnection, *events: LifecycleEvent, topic_prefix: str) -> None:
    """Stage lifecycle events (any of `schemas.notifications`) in one statement, in order."""
    await stage_all(conn, events, topic_prefix=topic_prefix)


async def stage_all(conn: AsyncConnection, events: Iterable[LifecycleEvent], *,
                    topic_prefix: str) -> None:
    """`stage` for an iterable of events."""
    topic = f"{topic_prefix}{topics.NOTIFICATIONS}"
    staged = [(topic, str(e.incident_id), wrap(e, occurred_at=e.at)) for e in events]
    await add_all_to_outbox(conn, source=f"{topic_prefix}{OUTBOX_SOURCE}", staged=staged)
