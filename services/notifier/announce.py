"""What the notifier says on `notifications.v1` at each step of a notification's life, built
from its rows and the matcher's decisions and staged through `lifecycle.stage` in the caller's
transaction. Ids, codes and times only: no child data.

Each step is announced once: a notification's creation and first view happen once by their own
guards, and the steps that can repeat (a push per e-mail or webhook, a review per delivery of its
event) are claimed in `processed_events` first, under a consumer name of their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from typing import Any, Final, Protocol

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.envelope import Envelope
from schemas.incidents import MAX_CHILDREN
from schemas.matching import (
    ChildMatched,
    ChildNeedsReview,
    ChildUnmatched,
    IncidentFacts,
    child_id_for,
)
from schemas.notifications import (
    ChildOutcome,
    EscalationStage,
    NotificationEscalated,
    NotificationPushed,
    NotificationRetracted,
    NotificationScheduled,
    NotificationViewed,
    PushChannel,
)
from services.common.idempotency import claim_event
from services.common.models import processed_events
from services.notifier.lifecycle import stage, stage_all
from services.notifier.models import notification_children, notifications
from services.notifier.scheduling import school_day_start

REPEAT_WINDOW: Final = timedelta(days=365)  # "children notified twice or more in 12 months"
ESCALATION_STAGES: Final[dict[str, EscalationStage]] = {
    "escalate_to_deputy": "deputy", "escalate_to_la": "la"}
_PUSHED = "lifecycle:pushed:"  # + channel: one NotificationPushed per channel and notification
_REVIEWED = "lifecycle:review"  # one ChildOutcome per ChildNeedsReview event


class Recipient(Protocol):
    """Whom a notification is for, as services/notifier/handlers.py plans it (`Target`)."""

    @property
    def school_urn(self) -> str | None: ...
    @property
    def la_code(self) -> str | None: ...
    @property
    def day_starts_at(self) -> time | None: ...


def _about(row: Any) -> dict[str, Any]:
    """The ids every notification event carries, from its `notifications` row."""
    return {"incident_id": row.incident_id, "notification_id": row.id,
            "force_code": row.incident["force_code"], "school_urn": row.school_urn,
            "la_code": row.la_code}


def child_index_of(incident_id: uuid.UUID, child_id: uuid.UUID) -> int | None:
    """The position in the police report of the child the matcher named `child_id` (None: an
    id not minted by `child_id_for`)."""
    return next((i for i in range(MAX_CHILDREN) if child_id_for(incident_id, i) == child_id),
                None)


TellingKey = tuple[str, str | None, str | None]  # a child's key, a school, else an LA's desk


def telling_key(child_key: str, *, school_urn: str | None, la_code: str | None) -> TellingKey:
    """Whom a notification about this child tells: the school, else the LA's own desk."""
    return (child_key, school_urn, la_code if school_urn is None else None)


async def told_before(conn: AsyncConnection, *, child_keys: Iterable[str], at: datetime,
                      ) -> dict[TellingKey, set[uuid.UUID]]:
    """For each recipient (the school, else the LA's own desk) that had a notification about
    one of `child_keys` in the REPEAT_WINDOW before `at`: the incidents, in one grouped query."""
    n, c = notifications.c, notification_children.c
    keys = sorted(set(child_keys))
    if not keys:
        return {}
    desk = case((n.school_urn.is_(None), n.la_code), else_=None)
    rows = await conn.execute(
        select(c.child_key, n.school_urn, desk.label("desk"),
               func.array_agg(func.distinct(n.incident_id)))
        .select_from(notification_children.join(notifications, n.id == c.notification_id))
        .where(c.child_key.in_(keys), n.created_at >= at - REPEAT_WINDOW, n.created_at < at)
        .group_by(c.child_key, n.school_urn, desk))
    return {(key, urn, la): set(incidents) for key, urn, la, incidents in rows}


async def count_repeat_children(
    conn: AsyncConnection, *, child_keys: Sequence[str], school_urn: str | None,
    la_code: str | None, incident_id: uuid.UUID, at: datetime,
) -> int:
    """How many of `child_keys` this recipient (the school, else the LA's own desk) had a
    notification about, for another incident, in the REPEAT_WINDOW before `at`."""
    told = await told_before(conn, child_keys=child_keys, at=at)
    return sum(1 for key in set(child_keys) if told.get(
        telling_key(key, school_urn=school_urn, la_code=la_code), set()) - {incident_id})


def scheduled_event(
    *, notification_id: uuid.UUID, incident: IncidentFacts, recipient: Recipient,
    child_index: int, push_at: datetime, at: datetime, repeats: int,
) -> NotificationScheduled:
    """A child joined a notification (a new one, or one of its incident's for the same
    recipient): its index, when it is pushed, the school day it must beat, and how many of
    its children (0 or 1) this recipient was told of in the last 12 months."""
    starts = recipient.day_starts_at
    return NotificationScheduled(
        incident_id=incident.incident_id, notification_id=notification_id, at=at,
        force_code=incident.force_code, school_urn=recipient.school_urn,
        la_code=recipient.la_code,
        recipient_role="school" if recipient.school_urn is not None else "la",
        child_indexes=[child_index], push_at=push_at, repeat_children=repeats,
        deadline_at=None if recipient.school_urn is None or starts is None
        else school_day_start(push_at, day_starts_at=starts),
    )


async def announce_pushed(
    conn: AsyncConnection, *, notification_ids: Sequence[str | uuid.UUID],
    channel: PushChannel, at: datetime, topic_prefix: str,
) -> None:
    """The notifications an e-mail (accepted by the relay) or a webhook (2xx) told their
    recipient of: each announced the first time on that channel only."""
    if not notification_ids:
        return
    claimed = list((await conn.execute(
        insert(processed_events).values([
            {"consumer": f"{_PUSHED}{channel}", "event_id": uuid.UUID(str(i))}
            for i in notification_ids])
        .on_conflict_do_nothing().returning(processed_events.c.event_id))).scalars())
    rows = (await conn.execute(select(notifications).where(notifications.c.id.in_(claimed))
                               .order_by(notifications.c.created_at))).all() if claimed else []
    await stage_all(conn, (NotificationPushed(**_about(row), at=at, channel=channel)
                           for row in rows), topic_prefix=topic_prefix)


async def announce_webhook_pushed(conn: AsyncConnection, *, body: bytes, at: datetime,
                                  topic_prefix: str) -> None:
    """A school's webhook answered 2xx: a notice's notifications were pushed."""
    sent = json.loads(body)
    if sent.get("event") == "notice":
        await announce_pushed(conn, notification_ids=sent.get("notification_ids", []),
                              channel="webhook", at=at, topic_prefix=topic_prefix)


async def announce_viewed(conn: AsyncConnection, row: Any, *, viewer_role: str, at: datetime,
                          topic_prefix: str) -> None:
    """Somebody opened the notification's details: announced the first time only (the
    caller holds the row's lock, so two first views cannot race)."""
    if row.viewed_at is None:
        await stage(conn, NotificationViewed(**_about(row), at=at, viewer_role=viewer_role),
                    topic_prefix=topic_prefix)


async def announce_escalated(conn: AsyncConnection, row: Any, *, action: str, at: datetime,
                             topic_prefix: str) -> None:
    """The deputy DSL, or the LA, was told of a notification nobody acknowledged in time (the
    morning's send and the duty manager's calls are no escalation stage)."""
    if action in ESCALATION_STAGES:
        await stage(conn, NotificationEscalated(**_about(row), at=at,
                                                stage=ESCALATION_STAGES[action]),
                    topic_prefix=topic_prefix)


async def announce_withdrawn(conn: AsyncConnection, row: Any, *, at: datetime,
                             topic_prefix: str) -> None:
    """The police withdrew the whole incident: the notification was cancelled or retracted."""
    await stage(conn, NotificationRetracted(**_about(row), at=at, reason="incident_withdrawn"),
                topic_prefix=topic_prefix)


def matched_outcome(event: ChildMatched, *, review_id: uuid.UUID | None) -> ChildOutcome:
    """The child is on these schools' rolls."""
    return ChildOutcome(
        incident_id=event.incident.incident_id, at=event.matched_at,
        force_code=event.incident.force_code, child_index=event.child_index, outcome="matched",
        school_urns=[s.urn for s in event.schools], la_code=event.schools[0].la_code,
        decided_by=event.decided_by, review_id=review_id)


def unmatched_outcome(event: ChildUnmatched, *, review_id: uuid.UUID | None) -> ChildOutcome:
    """The child is on no roll: its LA is told."""
    return ChildOutcome(
        incident_id=event.incident.incident_id, at=event.decided_at,
        force_code=event.incident.force_code, child_index=event.child_index,
        outcome="unmatched", la_code=event.la_code, decided_by=event.decided_by,
        review_id=review_id)


def review_outcome(event: ChildNeedsReview) -> ChildOutcome:
    """The child waits in an LA's review queue."""
    return ChildOutcome(
        incident_id=event.incident_id, at=event.queued_at, force_code=event.force_code,
        child_index=event.child_index, outcome="review", la_code=event.la_code,
        review_id=event.review_id)


async def announce_review(conn: AsyncConnection, envelope: Envelope[Any], *,
                          topic_prefix: str) -> None:
    """A review was queued (or handed over to another LA): once per event, redelivered or not."""
    if await claim_event(conn, consumer=_REVIEWED, event_id=envelope.event_id):
        await stage(conn, review_outcome(envelope.payload), topic_prefix=topic_prefix)
