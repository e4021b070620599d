"""Corrections and withdrawn children, as the notifier applies them.

A corrected child matched to the same recipient is updated in place; one decided elsewhere
(another school, the LA, a review) is taken from its old notification (retracted, reason
`corrected`) and told to its new recipient as any match is; a withdrawn child is taken back
(`child_withdrawn`). A notification whose last child goes is cancelled if not yet pushed and
retracted with a notice if it was, as a whole incident's withdrawal does. Someone who already
read a notification sees what police changed: when and which fields, never the old values.

matches.v1, reviews.v1 and incidents.v1 are not ordered against each other, so the newest
version applied to each corrected or withdrawn child is kept (`child_versions`), and an older
decision, or any decision about a withdrawn child, arriving late changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.envelope import Envelope
from schemas.incidents import (
    CHILD_ALWAYS_SHOWN,
    CHILD_DISCLOSABLE_FIELDS,
    INCIDENT_DISCLOSABLE_FIELDS,
    MAX_CHILDREN,
    ChildReport,
    ChildWithdrawn,
    IncidentCorrected,
)
from schemas.matching import ChildNeedsReview, IncidentFacts, child_id_for, facts_of
from schemas.notifications import NotificationRetracted, NotificationUpdated, RetractReason
from services.common.db import UnitOfWork
from services.common.disclosure import record_disclosure
from services.common.events import transactional
from services.common.idempotency import claim_event
from services.common.pseudonym import Secrets, child_key
from services.notifier.chain import DELIVERED
from services.notifier.content import (
    opened_children,
    opened_notification,
    seal_child,
    seal_incident,
)
from services.notifier.domain import on_withdraw
from services.notifier.lifecycle import stage
from services.notifier.models import (
    child_versions,
    notification_children,
    notifications,
    review_alerts,
)
from services.notifier.outgoing import _SYSTEM, OUTBOX_SOURCE, queue_email
from services.notifier.review_alerts import on_child_needs_review

CONSUMER = "notifier"
CLOSED = ("cancelled", "retracted")
REMOVED = "children"  # the field name a change lists when a child was taken out


class Deps(Protocol):
    """What applying a correction needs of the notifier's deps."""

    @property
    def clock(self) -> Callable[[], datetime]: ...
    @property
    def child_key_secret(self) -> Secrets: ...

    @property
    def topic_prefix(self) -> str: ...
    @property
    def service_desk(self) -> str: ...


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any], shown: Iterable[str],
                   *, always: Sequence[str] = CHILD_ALWAYS_SHOWN,
                   disclosable: Sequence[str] = CHILD_DISCLOSABLE_FIELDS) -> list[str]:
    """The names of the fields a reader may see whose values differ, in display order."""
    visible = {*shown}
    names = [*always, *(f for f in disclosable if f in visible)]
    return [f for f in names if old.get(f) != new.get(f)]


def with_change(changes: Sequence[Mapping[str, Any]], *, version: int, at: datetime,
                fields: Sequence[str]) -> list[dict[str, Any]]:
    """The notification's change list with one more: fields changed by the same version join
    its entry (a correction reaches a notification as its incident and as its children)."""
    out = [dict(c) for c in changes]
    if out and out[-1]["version"] == version:
        merged = [*out[-1]["fields"], *(f for f in fields if f not in out[-1]["fields"])]
        out[-1] = out[-1] | {"fields": merged}
        return out
    return [*out, {"version": version, "at": at.isoformat(), "fields": list(fields)}]


def indexes_of(incident_id: uuid.UUID, child_ids: Iterable[uuid.UUID]) -> list[int]:
    """The report positions of a notification's children (ids the matcher gave them)."""
    ids = set(child_ids)
    return [i for i in range(MAX_CHILDREN) if child_id_for(incident_id, i) in ids]


async def admit(conn: AsyncConnection, *, child_id: uuid.UUID, incident_id: uuid.UUID,
                version: int) -> bool:
    """Whether a decision about this child may be applied (False: the child was withdrawn, or
    a newer version of it was applied); a corrected child's version is recorded."""
    known = (await conn.execute(select(child_versions).where(
        child_versions.c.child_id == child_id).with_for_update())).first()
    if known is not None and (known.withdrawn_at is not None or known.version > version):
        return False
    if version > 1:
        stmt = insert(child_versions).values(child_id=child_id, incident_id=incident_id,
                                             version=version)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=["child_id"], set_={"version": stmt.excluded.version}))
    return True


async def settle(conn: AsyncConnection, deps: Deps, *, incident_id: uuid.UUID,
                 child_id: uuid.UUID, child_index: int, version: int, keep: set[str],
                 child: ChildReport | None = None, facts: IncidentFacts | None = None) -> None:
    """After a corrected child's decision was applied: its notifications for the recipients
    in `keep` show its new details and the new facts; it is taken from every other one."""
    if version == 1:
        return
    now = deps.clock()
    for row in await _notifications_of(conn, incident_id, child_id):
        if row.recipient_key in keep and child is not None and facts is not None:
            await _update_child(conn, deps, row, child, child_index, version, now)
            await refresh_facts(conn, deps, row, facts, version, now)
        else:
            await take_child(conn, deps, row, child_index, reason="corrected", now=now,
                             purpose="police corrected the report: the child is told elsewhere")


async def refresh_facts(conn: AsyncConnection, deps: Deps, row: Any, facts: IncidentFacts,
                        version: int, now: datetime) -> None:
    """Show a newer version's incident facts (never an older one's)."""
    if row.incident_version >= version or row.state in CLOSED:
        return
    new = facts.model_dump(mode="json")
    fields = changed_fields(opened_notification(conn, row._mapping)["incident"], new,
                            facts.disclosure_fields, always=(),
                            disclosable=INCIDENT_DISCLOSABLE_FIELDS)
    values: dict[str, Any] = {"incident": seal_incident(conn, row.id, new, at=now),
                              "incident_version": version}
    await conn.execute(update(notifications).where(notifications.c.id == row.id)
                       .values(**values))
    if fields and row.viewed_at is not None:
        await _note_change(conn, row.id, version=version, at=now, fields=fields)
    kids = (await conn.execute(select(notification_children.c.child_id).where(
        notification_children.c.notification_id == row.id))).scalars()
    indexes = indexes_of(row.incident_id, kids)
    if fields and indexes:
        await stage(conn, NotificationUpdated(**_about(row, now), child_indexes=indexes),
                    topic_prefix=deps.topic_prefix)


async def take_child(conn: AsyncConnection, deps: Deps, row: Any, child_index: int, *,
                     reason: RetractReason, purpose: str, now: datetime) -> None:
    """Take one child from a notification, closing it if it was the last; audited."""
    if row.state in CLOSED:
        return
    gone = (await conn.execute(notification_children.delete().where(
        notification_children.c.notification_id == row.id,
        notification_children.c.child_id == row.child_id,
    ).returning(notification_children.c.child_key))).scalar_one()
    left = (await conn.execute(select(func.count()).where(
        notification_children.c.notification_id == row.id))).scalar_one()
    told = row.state in DELIVERED
    if left:
        event = NotificationRetracted(**_about(row, now), reason=reason,
                                      child_indexes=[child_index])
        if row.viewed_at is not None:
            await _note_change(conn, row.id, version=_version_of(row), at=now,
                               fields=[REMOVED])
    else:
        event = NotificationRetracted(**_about(row, now), reason=reason)
        await conn.execute(update(notifications).where(notifications.c.id == row.id)
                           .values(state=on_withdraw(row.state), closed_at=now))
        for role in [row.recipient_role] + (["safeguarding"] if row.la_since else []):
            if told:
                await queue_email(conn, kind="retraction", school_urn=row.school_urn,
                                  la_code=row.la_code, recipient_role=role,
                                  notification_ids=[row.id], now=now,
                                  service_desk=deps.service_desk)
    await stage(conn, event, topic_prefix=deps.topic_prefix)
    await record_disclosure(
        conn, source=f"{deps.topic_prefix}{OUTBOX_SOURCE}", topic_prefix=deps.topic_prefix,
        principal=_SYSTEM, action="notification.retracted" if told else "notification.cancelled",
        channel="email" if told and not left else "api", purpose=purpose, child_key=gone, at=now,
        school_urn=row.school_urn, la_code=row.la_code, notification_id=row.id,
        incident_id=row.incident_id)


async def withdraw_child(conn: AsyncConnection, deps: Deps, *, incident_id: uuid.UUID,
                         child_index: int, at: datetime, purpose: str) -> None:
    """Police withdrew one child: no later decision about it applies, its review is no longer
    chased, and it is taken from every notification."""
    child_id = child_id_for(incident_id, child_index)
    stmt = insert(child_versions).values(child_id=child_id, incident_id=incident_id, version=1,
                                         withdrawn_at=at)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["child_id"],
                                                  set_={"withdrawn_at": at}))
    await conn.execute(update(review_alerts).where(
        review_alerts.c.child_id == child_id, review_alerts.c.resolved_at.is_(None),
    ).values(resolved_at=at, resolution="child_withdrawn"))
    for row in await _notifications_of(conn, incident_id, child_id):
        await take_child(conn, deps, row, child_index, reason="child_withdrawn",
                         purpose=purpose, now=deps.clock())


_HOLD_INCIDENT = text("SELECT pg_advisory_xact_lock(hashtext('notifier-incident:' || :id))")


async def hold_incident(conn: AsyncConnection, incident_id: uuid.UUID) -> None:
    """Take the incident's lock until this transaction ends: every handler of an event about
    one incident (matched, unmatched, review, corrected, child or incident withdrawn) takes
    it first. Partitions are assigned to notifiers independently per topic, so two copies
    can handle a withdrawal and a match of one incident at the same moment; without the lock
    the withdrawal saw none of the match's uncommitted notifications, and the match read
    "not withdrawn" before the withdrawal committed: a notification scheduled for a
    withdrawn incident. With it, the second waits and then sees what the first committed."""
    await conn.execute(_HOLD_INCIDENT, {"id": str(incident_id)})


# the same locks as _HOLD_INCIDENT, taken in the order of their keys: two transactions that
# hold some of the same incidents then never wait on each other in a cycle
_HOLD_INCIDENTS = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtext('notifier-incident:' || id)"
    " AS k FROM unnest(CAST(:ids AS text[])) AS id ORDER BY k) AS keys")


async def hold_incidents(conn: AsyncConnection, incident_ids: Iterable[uuid.UUID]) -> None:
    """`hold_incident` for many incidents in one statement (a poll's)."""
    ids = sorted({str(i) for i in incident_ids})
    if ids:
        await conn.execute(_HOLD_INCIDENTS, {"ids": ids})


@transactional
async def on_incident_corrected(envelope: Envelope[Any], *, deps: Deps, uow: UnitOfWork) -> None:
    """A correction: its incident facts on the incident's notifications, and the children it
    dropped taken back (its changed children come as decisions on matches.v1)."""
    event: IncidentCorrected = envelope.payload
    await hold_incident(uow.conn, event.incident_id)
    if not await claim_event(uow.conn, consumer=CONSUMER, event_id=envelope.event_id):
        return
    facts = facts_of(event.incident_id, event.incident, event.disclosure_fields)
    rows = (await uow.conn.execute(select(notifications).where(
        notifications.c.incident_id == event.incident_id).with_for_update())).all()
    for row in rows:
        await refresh_facts(uow.conn, deps, row, facts, event.version, deps.clock())
    for index in event.withdrawn_children:
        await withdraw_child(uow.conn, deps, incident_id=event.incident_id, child_index=index,
                             at=event.received_at,
                             purpose="police corrected the report: the child is no longer in it")


@transactional
async def on_child_withdrawn(envelope: Envelope[Any], *, deps: Deps, uow: UnitOfWork) -> None:
    """Police withdrew one child, with their reason (audited with each retraction)."""
    event: ChildWithdrawn = envelope.payload
    await hold_incident(uow.conn, event.incident_id)
    if await claim_event(uow.conn, consumer=CONSUMER, event_id=envelope.event_id):
        await withdraw_child(uow.conn, deps, incident_id=event.incident_id,
                             child_index=event.child_index, at=event.withdrawn_at,
                             purpose=f"police withdrew the child: {event.reason}")


@transactional
async def on_review_needed(envelope: Envelope[Any], *, deps: Deps,
                           uow: UnitOfWork) -> None:
    """A review queued (or handed over): unless it is older than the child's newest version
    or the child was withdrawn. A correction's review takes the child from its notifications
    and replaces the review it supersedes."""
    event: ChildNeedsReview = envelope.payload
    conn = uow.conn
    await hold_incident(conn, event.incident_id)
    if not await admit(conn, child_id=event.child_id, incident_id=event.incident_id,
                       version=event.version):
        return
    if event.version > 1 and event.handed_over_from is None:
        await settle(conn, deps, incident_id=event.incident_id, child_id=event.child_id,
                     child_index=event.child_index, version=event.version, keep=set())
        # ended just before the new review was queued, so that one is chased afresh
        await conn.execute(update(review_alerts).where(
            review_alerts.c.child_id == event.child_id, review_alerts.c.resolved_at.is_(None),
            review_alerts.c.review_id != event.review_id,
        ).values(resolved_at=event.queued_at - timedelta(microseconds=1),
                 resolution="corrected"))
    await on_child_needs_review(envelope, deps=deps, uow=uow)


async def _update_child(conn: AsyncConnection, deps: Deps, row: Any, child: ChildReport,
                        child_index: int, version: int, now: datetime) -> None:
    if row.child_version >= version or row.state in CLOSED:
        return
    new = child.model_dump(mode="json")
    [old] = opened_children(conn, [{**row._mapping, "notification_id": row.id}])
    await conn.execute(update(notification_children).where(
        notification_children.c.notification_id == row.id,
        notification_children.c.child_id == row.child_id,
    ).values(child=seal_child(conn, row.id, row.child_id, new, at=now),
             version=version, child_key=child_key(
        deps.child_key_secret, given_name=child.given_name, family_name=child.family_name,
        date_of_birth=child.date_of_birth)))
    if new == old["child"]:
        return
    fields = changed_fields(old["child"], new, row.incident.get("disclosure_fields", []))
    if fields and row.viewed_at is not None:
        await _note_change(conn, row.id, version=version, at=now, fields=fields)
    await stage(conn, NotificationUpdated(**_about(row, now), child_indexes=[child_index]),
                topic_prefix=deps.topic_prefix)


async def _notifications_of(conn: AsyncConnection, incident_id: uuid.UUID,
                            child_id: uuid.UUID) -> list[Any]:
    """The incident's notifications that hold the child, locked, with the child's row."""
    n, c = notifications.c, notification_children.c
    return list((await conn.execute(
        select(notifications, c.child_id, c.child, c.version.label("child_version"))
        .join(notification_children, c.notification_id == n.id)
        .where(n.incident_id == incident_id, c.child_id == child_id)
        .order_by(n.created_at).with_for_update(of=notifications))).all())


async def _note_change(conn: AsyncConnection, notification_id: uuid.UUID, *, version: int,
                       at: datetime, fields: Sequence[str]) -> None:
    """Add to what the reader is shown police changed (read afresh: one correction may note
    its incident and its child in turn)."""
    changes = (await conn.execute(select(notifications.c.changes).where(
        notifications.c.id == notification_id))).scalar_one()
    await conn.execute(update(notifications).where(notifications.c.id == notification_id)
                       .values(changes=with_change(changes, version=version, at=at,
                                                   fields=fields)))


def _version_of(row: Any) -> int:
    return max(int(row.incident_version), int(getattr(row, "child_version", 1)))


def _about(row: Any, now: datetime) -> dict[str, Any]:
    return {"incident_id": row.incident_id, "at": now, "notification_id": row.id,
            "force_code": row.incident["force_code"], "school_urn": row.school_urn,
            "la_code": row.la_code}
