"""Recording a disclosure in the same transaction as the read that reveals child data."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import topics
from schemas.disclosures import Channel, DisclosureRecorded
from schemas.envelope import wrap
from services.common.outbox import add_to_outbox
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
    disclosure_id = uuid.uuid4()
    event = DisclosureRecorded(
        disclosure_id=disclosure_id, at=at, actor=principal.subject,
        actor_role=principal.role, action=action, channel=channel, purpose=purpose,
        school_urn=school_urn, la_code=la_code, child_key=child_key,
        notification_id=notification_id, review_id=review_id, incident_id=incident_id,
    )
    await add_to_outbox(
        conn, source=source, topic=f"{topic_prefix}{topics.DISCLOSURES}", key=child_key,
        envelope=wrap(event, event_id=disclosure_id, occurred_at=at),
    )
    return disclosure_id
