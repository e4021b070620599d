"""The dispatcher: pushes due notifications, escalates unacknowledged ones, delivers mail.

Planning locks due notifications `FOR UPDATE SKIP LOCKED` and, in the same transaction,
moves them on and stages one e-mail per recipient (an outbox for mail), so two dispatchers
plan each notification once. Delivery locks one staged e-mail at a time the same way and
marks it sent in the transaction that held the lock while sending: a crash between send and
mark resends it (at least once) under the same Message-ID, which mail clients deduplicate;
each copy's sign-in link is committed before it is sent, so every copy's link works.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db import UnitOfWork
from services.common.disclosure import record_disclosure
from services.common.security import Principal
from services.notifier.channels import (
    EmailKind,
    Mailer,
    WebhookPoster,
    backoff_delay,
    render_email,
)
from services.notifier.domain import (
    DueAction,
    EscalationDeadlines,
    NotificationState,
    next_due_action,
    transition,
)
from services.notifier.models import (
    emails,
    local_authorities,
    notification_children,
    notifications,
    schools,
    sign_in_links,
    webhook_deliveries,
)
from services.notifier.recipients import choose_recipients

log = logging.getLogger(__name__)
DELIVERED: frozenset[str] = frozenset({"sent", "viewed", "escalated", "acknowledged"})
_AWAITING = ("sent", "viewed", "escalated")
_KIND_OF: dict[DueAction, EmailKind] = {
    "send": "notice", "escalate_to_deputy": "escalation_deputy", "escalate_to_la": "escalation_la",
}


async def queue_email(
    conn: AsyncConnection, *, kind: EmailKind, school_urn: str | None, la_code: str | None,
    recipient_role: str, notification_ids: Sequence[uuid.UUID], now: datetime,
) -> uuid.UUID:
    """Stage one content-free e-mail (and the school's webhook) in the caller's transaction."""
    school = None
    if school_urn is not None:
        school = (await conn.execute(select(schools).where(schools.c.urn == school_urn))).first()
    la_code = school.la_code if school is not None else la_code
    la = (await conn.execute(select(local_authorities).where(
        local_authorities.c.la_code == la_code))).first() if la_code else None
    to = choose_recipients(
        kind, recipient_role=recipient_role,
        school_contacts=school.contacts if school is not None else None,
        la_contacts=la.contacts if la is not None else None,
    ).addresses
    name = school.name if school is not None else (la.name if la is not None else "your LA")
    email_id = uuid.uuid4()
    await conn.execute(insert(emails).values(
        id=email_id, kind=kind, to_addrs=to, school_urn=school_urn, la_code=la_code,
        subject_name=name[:200], count=len(notification_ids), next_attempt_at=now, created_at=now,
    ))
    if school is not None and school.webhook and kind in ("notice", "retraction"):
        body = json.dumps({
            "delivery_id": str(email_id), "event": kind, "school_urn": school_urn,
            "notification_ids": [str(i) for i in notification_ids], "at": now.isoformat(),
        }).encode()
        await conn.execute(insert(webhook_deliveries).values(
            school_urn=school_urn, body=body, next_attempt_at=now, created_at=now))
    return email_id


@dataclass(frozen=True)
class SignInLink:
    """What a redeemed sign-in link points at."""

    email_id: uuid.UUID
    school_urn: str | None
    la_code: str | None


async def redeem_sign_in_link(
    conn: AsyncConnection, token: str, *, now: datetime
) -> SignInLink | None:
    """Use a sign-in link once: None when unknown, expired or already used."""
    row = (await conn.execute(
        update(sign_in_links)
        .where(sign_in_links.c.token_hash == _hash(token), sign_in_links.c.used_at.is_(None),
               sign_in_links.c.expires_at > now)
        .values(used_at=now)
        .returning(sign_in_links.c.email_id, sign_in_links.c.school_urn,
                   sign_in_links.c.la_code))).first()
    return None if row is None else SignInLink(row.email_id, row.school_urn, row.la_code)


OUTBOX_SOURCE = "notifier"
_SYSTEM = Principal(subject="system:notifier", kind="user", role="system", scopes=frozenset())


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


_CLAIM_RECIPIENTS = text(
    "SELECT key FROM unnest(CAST(:keys AS text[])) AS key "
    "WHERE pg_try_advisory_xact_lock(hashtext('notifier-recipient:' || key))"
)


@dataclass
class Dispatcher:
    """Plans and delivers; every step is safe to run in several processes at once."""

    engine: AsyncEngine
    mailer: Mailer
    webhooks: WebhookPoster
    clock: Callable[[], datetime]
    portal_base_url: str
    link_ttl: timedelta = timedelta(hours=12)
    max_attempts: int = 8
    backoff_s: float = 5.0
    batch_size: int = 200
    topic_prefix: str = ""

    async def run(self, stop: asyncio.Event, *, interval_s: float = 1.0) -> None:
        """Run passes until `stop` is set; a failed pass is logged and retried."""
        while not stop.is_set():
            busy = False
            try:
                busy = await self.run_once() > 0
            except Exception as exc:
                log.warning("dispatch pass failed", extra={"exc_type": type(exc).__name__})
            if busy:
                continue  # a morning's backlog: no pause between passes until it is cleared
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def run_once(self) -> int:
        """One pass: plan what is due, then deliver staged e-mails and webhooks; count work."""
        done = await self.plan_due()
        while await self.deliver_one_email():
            done += 1
        while await self.deliver_one_webhook():
            done += 1
        return done

    async def plan_due(self) -> int:
        """Push due notifications and escalate late ones, one e-mail per recipient; count."""
        now = self.clock()
        n = notifications.c
        due = or_(
            and_(n.state == "scheduled", n.push_at <= now),
            and_(n.state.in_(_AWAITING), n.school_urn.is_not(None), or_(
                and_(n.escalations_sent == 0, n.deputy_at <= now),
                and_(n.escalations_sent == 1, n.la_at <= now))))
        # whole recipients per pass, so a school with many due notifications gets one e-mail
        recipients = (select(n.recipient_key).where(due).group_by(n.recipient_key)
                      .order_by(func.min(n.push_at)).limit(self.batch_size))
        async with UnitOfWork(self.engine) as uow:
            keys = list((await uow.conn.execute(recipients)).scalars())
            # one dispatcher per recipient at a time (the others skip it this pass), so two
            # instances never split one school's morning into two e-mails
            mine = list((await uow.conn.execute(_CLAIM_RECIPIENTS, {"keys": keys})).scalars())
            rows = (await uow.conn.execute(
                select(notifications).where(due, n.recipient_key.in_(mine))
                .order_by(n.push_at).with_for_update(skip_locked=True))).all() if mine else []
            groups: dict[tuple[DueAction, str | None, str | None, str], list[Any]] = (
                defaultdict(list))
            for row in rows:
                action = _due(row, now)
                if action is not None:
                    groups[(action, row.school_urn, row.la_code, row.recipient_role)].append(row)
            for (action, urn, la, role), members in groups.items():
                ids = [m.id for m in members]
                email_id = await queue_email(uow.conn, kind=_KIND_OF[action], school_urn=urn,
                                             la_code=la, recipient_role=role,
                                             notification_ids=ids, now=now)
                for member in members:
                    await uow.conn.execute(update(notifications).where(n.id == member.id)
                                           .values(**_moved(member, action, now, email_id)))
                    if action != "send":
                        await audit_sent_about(
                            uow.conn, topic_prefix=self.topic_prefix, notification=member,
                            action="notification.escalated", at=now,
                            purpose=f"unacknowledged: {_KIND_OF[action]}")
            await uow.commit()
        return sum(len(m) for m in groups.values())

    async def deliver_one_email(self) -> bool:
        """Send the next staged e-mail holding its row lock; False when none is waiting."""
        now = self.clock()
        async with UnitOfWork(self.engine) as uow:
            row = (await uow.conn.execute(
                select(emails).where(emails.c.status == "pending", emails.c.next_attempt_at <= now)
                .order_by(emails.c.next_attempt_at).limit(1)
                .with_for_update(skip_locked=True))).first()
            if row is None:
                return False
            values: dict[str, Any]
            if not row.to_addrs:
                log.error("e-mail has no recipients", extra={"email_id": str(row.id)})
                values = {"status": "dead", "last_error": "no recipients"}
            else:
                values = await self._send(row, now)
            await uow.conn.execute(update(emails).where(emails.c.id == row.id).values(**values))
            await uow.commit()
        return True

    async def _send(self, row: Any, now: datetime) -> dict[str, Any]:
        token = None if row.kind == "retraction" else secrets.token_urlsafe(32)
        link = f"{self.portal_base_url}/portal/sign-in?token={token}" if token else None
        subject, body = render_email(cast(EmailKind, row.kind), name=row.subject_name,
                                     count=row.count, link=link)
        if token is not None:
            # committed before the e-mail leaves: a crash between sending and marking resends,
            # and the copy already delivered must not carry a link that was rolled back
            async with UnitOfWork(self.engine) as links:
                await links.conn.execute(insert(sign_in_links).values(
                    token_hash=_hash(token), email_id=row.id, school_urn=row.school_urn,
                    la_code=row.la_code, expires_at=now + self.link_ttl))
                await links.commit()
        try:
            await self.mailer.send(to=list(row.to_addrs), subject=subject, body=body,
                                   message_id=f"<{row.id}@daybreak>")
        except Exception as exc:
            return self._failed(row.attempts + 1, now, exc)
        return {"status": "sent", "sent_at": now, "attempts": row.attempts + 1}

    async def deliver_one_webhook(self) -> bool:
        """Post the next due webhook with its signature; False when none is waiting."""
        now = self.clock()
        w = webhook_deliveries.c
        async with UnitOfWork(self.engine) as uow:
            row = (await uow.conn.execute(
                select(webhook_deliveries).where(w.status == "pending", w.next_attempt_at <= now)
                .order_by(w.next_attempt_at).limit(1).with_for_update(skip_locked=True))).first()
            if row is None:
                return False
            hook = (await uow.conn.execute(select(schools.c.webhook).where(
                schools.c.urn == row.school_urn))).scalar()
            values: dict[str, Any] = {"status": "dropped", "last_error": "webhook removed"}
            if hook and hook.get("secret"):
                try:
                    await self.webhooks.post(hook["url"], secret=hook["secret"], body=row.body,
                                             timestamp=int(now.timestamp()),
                                             delivery_id=str(row.id))
                    values = {"status": "delivered", "delivered_at": now,
                              "attempts": row.attempts + 1}
                except Exception as exc:
                    values = self._failed(row.attempts + 1, now, exc)
            await uow.conn.execute(update(webhook_deliveries).where(w.id == row.id)
                                   .values(**values))
            await uow.commit()
        return True

    def _failed(self, attempts: int, now: datetime, exc: Exception) -> dict[str, Any]:
        # dead after max attempts: kept for an operator, never retried on its own
        status = "dead" if attempts >= self.max_attempts else "pending"
        if status == "dead":
            log.error("delivery dead-lettered", extra={"exc_type": type(exc).__name__})
        return {"status": status, "attempts": attempts, "last_error": type(exc).__name__,
                "next_attempt_at": now + backoff_delay(attempts, base_s=self.backoff_s)}


def _due(row: Any, now: datetime) -> DueAction | None:
    if row.deputy_at is None or row.la_at is None:
        return "send" if row.state == "scheduled" and now >= row.push_at else None
    return next_due_action(row.state, now, push_at=row.push_at,
                           deadlines=EscalationDeadlines(row.deputy_at, row.la_at),
                           escalations_sent=row.escalations_sent)


def _moved(row: Any, action: DueAction, now: datetime, email_id: uuid.UUID) -> Mapping[str, Any]:
    state: NotificationState = row.state
    if action == "send":
        return {"state": transition(state, "send"), "sent_at": now, "email_id": email_id}
    return {"state": transition(state, "escalate"), "escalations_sent": row.escalations_sent + 1}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
