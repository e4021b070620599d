"""The LA's reviews as the notifier chases them, from `reviews.v1` and the matches that end them.

The LA's review contact hears at once that a review is waiting (and its deadline); its duty
manager `escalation_before_minutes` before the deadline, then every `DUTY_REPEAT_MINUTES`,
until a ChildMatched or ChildUnmatched decided by review resolves it. The two topics are not
ordered against each other: a resolution that arrives first is kept as an alert already
resolved, so the late ChildNeedsReview does nothing.

An alert holds no child data (the matcher keeps the child and the candidates) and its mail
only says that reviews are waiting for the LA and by when: no one learns anything about a
child from it, so it is no disclosure and nothing is audited; opening the review is.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.envelope import Envelope
from schemas.matching import ChildNeedsReview
from services.common.db import UnitOfWork
from services.common.events import HasEngine, transactional
from services.notifier.announce import announce_review
from services.notifier.chain import DUTY_REPEAT
from services.notifier.channels import EmailKind
from services.notifier.models import notifier_withdrawn_incidents, review_alerts
from services.notifier.outgoing import escalation_before, queue_email
from services.notifier.scheduling import duty_call_at, next_repeat, next_school_day_start

WITHDRAWN: Final = "withdrawn"
_RESOLVED_FIRST = uuid.UUID("6f1c1f55-5d0e-4c1b-9f59-2f4b8a7e0c11")  # names a placeholder id


class ReviewDeps(HasEngine, Protocol):
    """What the review handler needs of the notifier's deps: the engine, the clock and the
    topic prefix its lifecycle events are staged under."""

    clock: Callable[[], datetime]
    topic_prefix: str


@transactional
async def on_child_needs_review(envelope: Envelope[Any], *, deps: ReviewDeps,
                                uow: UnitOfWork) -> None:
    """Start chasing the review, or move it to the LA that accepted a handover.

    No processed-event claim: the upsert is safe to repeat, and a handover may be announced
    under the same event id as the review it moves.
    """
    event: ChildNeedsReview = envelope.payload
    conn, now = uow.conn, deps.clock()
    la_code = event.la_code or ""  # an LA unknown to the copy: the service desk is told
    arrived = max(event.queued_at, envelope.occurred_at)
    deadline = event.deadline_at or next_school_day_start(event.queued_at)
    before = await escalation_before(conn, la_code)
    duty_at = duty_call_at(deadline, arrived_at=arrived, before=before)
    gone = (await conn.execute(select(notifier_withdrawn_incidents.c.incident_id).where(
        notifier_withdrawn_incidents.c.incident_id == event.incident_id))).first()
    if gone is None:
        await announce_review(conn, envelope, topic_prefix=deps.topic_prefix)
    fresh = {"review_id": event.review_id, "la_code": la_code, "deadline_at": deadline,
             "alert_at": now, "alerted_at": None, "duty_at": duty_at, "duty_calls": 0}
    withdrawn = {"resolved_at": now, "resolution": WITHDRAWN} if gone is not None else {}
    await conn.execute(insert(review_alerts).values(
        child_id=event.child_id, incident_id=event.incident_id, created_at=now, **fresh,
        **withdrawn).on_conflict_do_nothing(index_elements=["child_id"]))
    row = (await conn.execute(select(review_alerts).where(
        review_alerts.c.child_id == event.child_id).with_for_update())).one()
    if gone is not None or (row.resolved_at is not None
                            and row.resolved_at >= event.queued_at):
        return  # withdrawn, or resolved before this late arrival (the topics race)
    if row.resolved_at is None and row.la_code == la_code:
        return  # a redelivery
    # a new LA (a handover accepted), or queued again after it was resolved (a corrected
    # incident): the review contact is told anew, the duty manager's calls start over
    await conn.execute(update(review_alerts).where(review_alerts.c.child_id == event.child_id)
                       .values(**fresh, resolved_at=None, resolution=None))


async def resolve_review(
    conn: AsyncConnection, *, child_id: uuid.UUID, incident_id: uuid.UUID,
    la_code: str | None, resolution: str, at: datetime,
) -> uuid.UUID | None:
    """Close the child's alert; one not yet seen is kept already resolved. The review's id,
    when its ChildNeedsReview has been seen."""
    done = {"resolved_at": at, "resolution": resolution[:32]}
    placeholder = uuid.uuid5(_RESOLVED_FIRST, str(child_id))
    await conn.execute(insert(review_alerts).values(
        review_id=placeholder, child_id=child_id,
        incident_id=incident_id, la_code=la_code or "", deadline_at=at, created_at=at,
        alert_at=at, alerted_at=at, duty_at=at, **done,
    ).on_conflict_do_update(index_elements=["child_id"], set_=done,
                            where=review_alerts.c.resolved_at.is_(None)))
    found: uuid.UUID | None = (await conn.execute(select(review_alerts.c.review_id).where(
        review_alerts.c.child_id == child_id))).scalar()
    return None if found == placeholder else found


async def resolve_incident_reviews(conn: AsyncConnection, *, incident_id: uuid.UUID,
                                   at: datetime) -> None:
    """A withdrawn incident's reviews are no longer chased."""
    await conn.execute(update(review_alerts).where(
        review_alerts.c.incident_id == incident_id, review_alerts.c.resolved_at.is_(None),
    ).values(resolved_at=at, resolution=WITHDRAWN))


def due_alerts(now: datetime) -> Any:
    """Open alerts whose review contact or duty manager is to be told at `now`."""
    a = review_alerts.c
    return and_(a.resolved_at.is_(None), or_(and_(a.alerted_at.is_(None), a.alert_at <= now),
                                             a.duty_at <= now))


async def plan_review_alerts(
    conn: AsyncConnection, *, las: list[str], now: datetime, service_desk: str,
) -> int:
    """Tell each LA of `las` (claimed by the caller) of its due alerts: one e-mail to its
    review contact for those waiting, one to its duty manager for those overdue; count."""
    a = review_alerts.c
    rows = (await conn.execute(select(review_alerts).where(due_alerts(now), a.la_code.in_(las))
                               .with_for_update(skip_locked=True))).all()
    groups: dict[tuple[EmailKind, str], list[Any]] = defaultdict(list)
    for row in rows:
        if row.alerted_at is None and row.alert_at <= now:
            groups[("review_waiting", row.la_code)].append(row)
        if row.duty_at <= now:
            groups[("review_overdue", row.la_code)].append(row)
    for (kind, la_code), members in groups.items():
        # the mail is about these reviews: it names their nearest deadline, not an older one's
        await queue_email(conn, kind=kind, school_urn=None, la_code=la_code or None,
                          recipient_role="review",
                          notification_ids=[m.review_id for m in members], now=now,
                          service_desk=service_desk, count=len(members))
        for member in members:
            moved = {"alerted_at": now} if kind == "review_waiting" else {
                "duty_calls": a.duty_calls + 1,
                "duty_at": next_repeat(member.duty_at, now, every=DUTY_REPEAT)}
            await conn.execute(update(review_alerts).where(a.review_id == member.review_id)
                               .values(**moved))
    return sum(len(m) for m in groups.values())


async def earliest_deadline(conn: AsyncConnection, la_code: str | None,
                            review_ids: Sequence[uuid.UUID] = ()) -> datetime | None:
    """The nearest deadline of the reviews a review e-mail is about (of all the LA's open
    reviews when it names none: a mail staged before it recorded them)."""
    a = review_alerts.c
    about = a.review_id.in_(review_ids) if review_ids else a.resolved_at.is_(None)
    found: datetime | None = (await conn.execute(select(func.min(a.deadline_at)).where(
        a.la_code == (la_code or ""), about))).scalar()
    return found
