"""Staging content-free mail (an outbox for e-mail) and auditing who was told about whom."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.disclosure import record_disclosure
from services.common.escalation import ESCALATION_BEFORE_MINUTES
from services.common.security import Principal
from services.notifier.channels import EmailKind
from services.notifier.models import (
    emails,
    local_authorities,
    notification_children,
    schools,
    webhook_deliveries,
)
from services.notifier.recipients import Recipients, choose_recipients

OUTBOX_SOURCE = "notifier"
_SYSTEM = Principal(subject="system:notifier", kind="user", role="system", scopes=frozenset())


@dataclass(frozen=True)
class Desk:
    """A school (maybe unknown) and its LA (maybe unknown) as the notifier's copy has them."""

    school: Any
    la: Any
    la_code: str | None

    @property
    def name(self) -> str:
        """Whom the mail is about: the school, else the LA."""
        if self.school is not None:
            return str(self.school.name)
        return str(self.la.name) if self.la is not None else "your local authority"

    @property
    def before(self) -> timedelta:
        """How long before a deadline the LA's duty manager is called."""
        minutes = self.la.escalation_before_minutes if self.la is not None else None
        return timedelta(minutes=minutes or ESCALATION_BEFORE_MINUTES)

    def recipients(self, kind: EmailKind, *, recipient_role: str,
                   service_desk: str) -> Recipients:
        """Who an e-mail of this kind goes to here (services/notifier/recipients.py)."""
        return choose_recipients(
            kind, recipient_role=recipient_role,
            school_contacts=self.school.contacts if self.school is not None else None,
            la_contacts=self.la.contacts if self.la is not None else None,
            service_desk=service_desk)


async def desk_of(conn: AsyncConnection, *, school_urn: str | None,
                  la_code: str | None) -> Desk:
    """The school and LA rows an e-mail about `school_urn` (or the LA) is addressed from."""
    school = None
    if school_urn is not None:
        school = (await conn.execute(select(schools).where(schools.c.urn == school_urn))).first()
    la_code = school.la_code if school is not None else la_code
    la = (await conn.execute(select(local_authorities).where(
        local_authorities.c.la_code == la_code))).first() if la_code else None
    return Desk(school, la, la_code)


async def escalation_before(conn: AsyncConnection, la_code: str | None) -> timedelta:
    """How long before a deadline the LA's duty manager is called (the default when the
    copy does not know the LA)."""
    return (await desk_of(conn, school_urn=None, la_code=la_code)).before


@dataclass(frozen=True)
class Queued:
    """A staged e-mail and who it is for."""

    email_id: uuid.UUID
    recipients: Recipients


async def queue_email(
    conn: AsyncConnection, *, kind: EmailKind, school_urn: str | None, la_code: str | None,
    recipient_role: str, notification_ids: Sequence[uuid.UUID], now: datetime,
    service_desk: str, recipients: Recipients | None = None, count: int | None = None,
) -> Queued:
    """Stage one content-free e-mail (and the school's webhook) in the caller's transaction.

    The row keeps the role that receives it and the notifications it is about, so a mail
    that fails for good can be handed on to the next person in line.
    """
    desk = await desk_of(conn, school_urn=school_urn, la_code=la_code)
    to = recipients or desk.recipients(kind, recipient_role=recipient_role,
                                       service_desk=service_desk)
    email_id = uuid.uuid4()
    await conn.execute(insert(emails).values(
        id=email_id, kind=kind, to_addrs=to.as_json(), school_urn=school_urn,
        la_code=desk.la_code, subject_name=desk.name[:200],
        count=len(notification_ids) if count is None else count,
        notification_ids=[str(i) for i in notification_ids], next_attempt_at=now,
        created_at=now))
    school = desk.school
    if school is not None and school.webhook and kind in ("notice", "retraction"):
        body = json.dumps({
            "delivery_id": str(email_id), "event": kind, "school_urn": school_urn,
            "notification_ids": [str(i) for i in notification_ids], "at": now.isoformat(),
        }).encode()
        await conn.execute(insert(webhook_deliveries).values(
            school_urn=school_urn, body=body, next_attempt_at=now, created_at=now))
    return Queued(email_id, to)


async def audit_sent_about(
    conn: AsyncConnection, *, topic_prefix: str, notification: Any, action: str, purpose: str,
    at: datetime,
) -> None:
    """Record, per child, that an e-mail went out about this notification (escalation,
    retraction): the e-mail holds no child data, but who was told about whom is audited."""
    keys = (await conn.execute(select(notification_children.c.child_key).where(
        notification_children.c.notification_id == notification.id))).scalars()
    for key in keys:
        await record_disclosure(
            conn, source=f"{topic_prefix}{OUTBOX_SOURCE}", topic_prefix=topic_prefix,
            principal=_SYSTEM, action=action, channel="email", purpose=purpose, child_key=key,
            at=at, school_urn=notification.school_urn, la_code=notification.la_code,
            notification_id=notification.id, incident_id=notification.incident_id)
