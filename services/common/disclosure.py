"""Recording a disclosure in the same transaction as the read that reveals child data."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import topics
from schemas.disclosures import Channel, DisclosureRecorded
from schemas.envelope import wrap
from services.common.outbox import add_all_to_outbox
from services.common.security import Principal


async def record_disclosure(
    conn: AsyncConnection,
    *,
    source: str,
    topic_prefix: str,
    principal: Principal,
    action: str,
    channel: Channel,
    purpose: str,
    child_key: str,
    at: datetime,
    school_urn: str | None = None,
    la_code: str | None = None,
    notification_id: uuid.UUID | None = None,
    review_id: uuid.UUID | None = None,
    incident_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Stage a DisclosureRecorded event; fails closed: no commit, no data shown."""
    [disclosure_id] = await record_disclosures(
        conn, source=source, topic_prefix=topic_prefix, principal=principal, action=action,
        channel=channel, purpose=purpose, child_keys=[child_key], at=at, school_urn=school_urn,
        la_code=la_code, notification_id=notification_id, review_id=review_id,
        incident_id=incident_id)
    return disclosure_id


async def record_disclosures(
    conn: AsyncConnection,
    *,
    source: str,
    topic_prefix: str,
    principal: Principal,
    action: str,
    channel: Channel,
    purpose: str,
    child_keys: Sequence[str],
    at: datetime,
    school_urn: str | None = None,
    la_code: str | None = None,
    notification_id: uuid.UUID | None = None,
    review_id: uuid.UUID | None = None,
    incident_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """`record_disclosure` for each of `child_keys` (one event per child, in order), staged
    in one statement; the disclosures' ids."""
    staged = []
    for child_key in child_keys:
        event = DisclosureRecorded(
            disclosure_id=uuid.uuid4(), at=at, actor=principal.subject,
            actor_role=principal.role, action=action, channel=channel, purpose=purpose,
            school_urn=school_urn, la_code=la_code, child_key=child_key,
            notification_id=notification_id, review_id=review_id, incident_id=incident_id,
        )
        staged.append((f"{topic_prefix}{topics.DISCLOSURES}", child_key,
                       wrap(event, event_id=event.disclosure_id, occurred_at=at)))
    await add_all_to_outbox(conn, source=source, staged=staged)
    return [envelope.event_id for _, _, envelope in staged]
