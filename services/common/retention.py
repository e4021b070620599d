"""Content retention, shared rules: when content has passed its period, what of an incident is
kept, how a purge is announced, and the daily loop. Each service purges its own tables
(services/notifier/retention.py, services/matcher/retention.py) and announces the purge on
disclosures.v1 in the same transaction, so the audit log records every erasure.

A notification's content is judged by its `created_at` (when Daybreak received it), not the
incident's `occurred_at`: a late report must still reach the school in full. A review is
judged by `resolved_at` (resolved or withdrawn); open reviews are never touched. Erasure keeps
each row's ids, school, state and timestamps, so audit entries that name them still resolve.
The live roll (`pupils`) is not content and is never purged here.

The same run deletes the service's outbox rows published more than OUTBOX_KEPT_DAYS ago: each
holds a whole event (a child's name, a summary) that has already reached its topic, where the
topic's own retention.ms ends it (services/common/settings.TopicLayout).

Crypto-shredding: child data is sealed under a data key per month (services/common/crypto.py).
The notifier keeps content longest (notifications by `created_at`, no holder keeps it longer:
topics and dead letters at most the content days, outbox rows a day), so it owns the keys'
retention: after its purge it deletes the key of every month wholly older than the cutoff,
and what is left of that month anywhere (a Kafka segment, a backup, a dead letter) can never
be opened again. Announced like a purge (kind "child data keys").
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, literal
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from schemas import topics
from schemas.disclosures import ContentPurged, PurgeTrigger
from schemas.envelope import wrap
from services.common.crypto import period_of
from services.common.db import UnitOfWork
from services.common.outbox import add_to_outbox, purge_published
from services.common.runner import in_background
from services.common.sealing import sealing_of
from services.common.settings import Settings

log = logging.getLogger(__name__)
DAY_S = 24 * 60 * 60.0
# incident facts that identify no one: kept so a purged row still reads as an incident
KEPT_INCIDENT_KEYS = ("incident_id", "force_code", "occurred_at", "incident_type")
PURGED_MARK = "purged_at"
RETENTION_ACTOR = "system:retention"
# a published outbox row is kept a day for an operator's look back ("was it sent, when?"),
# never longer than the content itself
OUTBOX_KEPT_DAYS = 1
OUTBOX_KIND = "outbox events"
KEYS_KIND = "child data keys"


def content_cutoff(now: datetime, days: int) -> datetime:
    """The instant before which content has passed its retention period."""
    return now - timedelta(days=days)


def stub_incident(incident: ColumnElement[Any], now: datetime) -> ColumnElement[Any]:
    """SQL for an incident document reduced to KEPT_INCIDENT_KEYS and the purge mark."""
    kept = [part for key in KEPT_INCIDENT_KEYS for part in (literal(key), incident[key])]
    return func.jsonb_strip_nulls(func.jsonb_build_object(
        *kept, literal(PURGED_MARK), literal(now.isoformat())))


async def announce_purge(
    conn: AsyncConnection, *, topic_prefix: str, service: str, kind: str, count: int,
    cutoff: datetime, days: int, now: datetime, trigger: PurgeTrigger,
) -> None:
    """Stage a ContentPurged for the audit log in the caller's (the erasing) transaction."""
    purge_id = uuid.uuid4()
    event = ContentPurged(purge_id=purge_id, at=now, service=service, kind=kind, count=count,
                          cutoff=cutoff, retention_days=days, trigger=trigger)
    await add_to_outbox(conn, source=f"{topic_prefix}{service}",
                        topic=f"{topic_prefix}{topics.DISCLOSURES}", key=str(purge_id),
                        envelope=wrap(event, event_id=purge_id, occurred_at=now))


def expired_period(now: datetime, days: int) -> tuple[str, datetime]:
    """The latest data-key period wholly older than the retention cutoff, and when it ended
    (the start of the cutoff's month, UTC)."""
    cutoff = content_cutoff(now, days).astimezone(UTC)
    month_start = cutoff.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return period_of(month_start - timedelta(microseconds=1)), month_start


async def shred_expired_keys(
    engine: AsyncEngine, *, service: str, topic_prefix: str, days: int, now: datetime,
    trigger: PurgeTrigger,
) -> list[str]:
    """The retention owner's crypto-shredding: delete the data keys of every period wholly
    older than the cutoff and announce it in the same transaction (unless this process is
    not the owner: DAYBREAK_SHRED_EXPIRED_KEYS off); returns the periods shredded."""
    sealing = sealing_of(engine)
    if not sealing.shreds:
        return []
    through, ended = expired_period(now, days)
    async with UnitOfWork(engine) as uow:
        shredded = sealing.keyring.shred_through(through)  # inside the open transaction: a
        if shredded:  # failed shred announces nothing; a failed commit is the rarer loss
            await announce_purge(uow.conn, topic_prefix=topic_prefix, service=service,
                                 kind=KEYS_KIND, count=len(shredded), cutoff=ended, days=days,
                                 now=now, trigger=trigger)
        await uow.commit()
    if shredded:
        log.info("shredded the data keys of %d period(s) through %s", len(shredded), through)
    return shredded


class Purge(Protocol):
    """Erase content older than `cutoff` in the caller's transaction; returns how many rows."""

    def __call__(self, conn: AsyncConnection, *, cutoff: datetime, now: datetime
                 ) -> Awaitable[int]: ...


async def purge_and_announce(
    engine: AsyncEngine, purge: Purge, *, service: str, kind: str, topic_prefix: str,
    days: int, now: datetime, trigger: PurgeTrigger,
) -> int:
    """Purge the content and the service's published outbox rows, announcing each in the same
    transaction; returns how many content rows were erased."""
    cutoff = content_cutoff(now, days)
    outbox_days = min(OUTBOX_KEPT_DAYS, days)
    outbox_cutoff = content_cutoff(now, outbox_days)
    async with UnitOfWork(engine) as uow:
        count = await purge(uow.conn, cutoff=cutoff, now=now)
        # before announcing: this run's own announcements are unpublished, so never purged
        sent = await purge_published(uow.conn, source=f"{topic_prefix}{service}",
                                     before=outbox_cutoff)
        for what, erased, before, period in ((kind, count, cutoff, days),
                                             (OUTBOX_KIND, sent, outbox_cutoff, outbox_days)):
            if erased:
                await announce_purge(uow.conn, topic_prefix=topic_prefix, service=service,
                                     kind=what, count=erased, cutoff=before, days=period,
                                     now=now, trigger=trigger)
        await uow.commit()
    return count


def purge_purpose(event: ContentPurged) -> str:
    """The audit entry's purpose for a purge: what, how many, by whom, and the cutoff."""
    return (f"retention {event.retention_days}d: {event.count} {event.kind} erased by "
            f"{event.service}, cutoff {event.cutoff.isoformat()}")


class RetentionRun(Protocol):
    """A service's purge: erase and announce in one transaction, return how many rows."""

    def __call__(self, engine: AsyncEngine, *, topic_prefix: str, days: int, now: datetime,
                 trigger: PurgeTrigger) -> Awaitable[int]: ...


@asynccontextmanager
async def daily_retention(
    run: RetentionRun, *, engine: AsyncEngine, settings: Settings,
    clock: Callable[[], datetime], published: Callable[[], None],
) -> AsyncIterator[None]:
    """The service's daily purge in the background while the context is open."""

    async def once() -> None:
        await run(engine, topic_prefix=settings.topic_prefix,
                  days=settings.retention_content_days, now=clock(), trigger="schedule")
        published()  # an outbox purge alone is announced too: wake the relay either way

    async with in_background(run_daily(once, interval_s=settings.retention_interval_s)):
        yield


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
