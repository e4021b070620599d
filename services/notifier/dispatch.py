"""The dispatcher: pushes due notifications, walks them along the safety net, delivers mail.

Planning locks due notifications (and review alerts) `FOR UPDATE SKIP LOCKED` and, in the
same transaction, moves them on and stages one e-mail per recipient (an outbox for mail), so
two dispatchers plan each step once. Delivery locks one staged e-mail at a time the same way
and marks it sent in the transaction that held the lock while sending: a crash between send
and mark resends it (at least once) under the same Message-ID, which mail clients
deduplicate; each copy's sign-in link is committed before it is sent, so every copy's link
works. A mail that fails for good is handed on to the next person in line in the
transaction that marks it dead, so that happens once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import and_, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db import UnitOfWork, json_rows_param, update_json_rows
from services.common.safe_http import failure_reason
from services.notifier.announce import (
    announce_escalated,
    announce_pushed,
    announce_webhook_pushed,
)
from services.notifier.chain import (
    AWAITING,
    DELIVERED,
    EMAIL_KIND,
    Chain,
    ChainAction,
    after,
    deadline,
    handed_to_la,
    next_step,
)
from services.notifier.channels import (
    REVIEW_KINDS,
    EmailKind,
    Mailer,
    WebhookPoster,
    backoff_delay,
    render_email,
)
from services.notifier.models import (
    emails,
    local_authorities,
    notifications,
    review_alerts,
    schools,
    sign_in_links,
    webhook_deliveries,
)
from services.notifier.outgoing import (
    OUTBOX_SOURCE,
    Desk,
    audit_sent_about,
    desk_of,
    queue_email,
)
from services.notifier.recipients import SCHOOL_ROLES, Recipients, hand_on_recipients
from services.notifier.review_alerts import due_alerts, earliest_deadline, plan_review_alerts
from services.notifier.settings import SERVICE_DESK_EMAIL

log = logging.getLogger(__name__)
__all__ = ["DELIVERED", "OUTBOX_SOURCE", "Dispatcher", "LinkOutcome", "SignInLink",
           "redeem_sign_in_link", "sign_in_link"]


@dataclass(frozen=True)
class SignInLink:
    """A usable sign-in link: the e-mail it came in, what it points at, whom it was sent to."""

    email_id: uuid.UUID
    school_urn: str | None
    la_code: str | None
    recipients: frozenset[str] = frozenset()  # lower-cased addresses

    def is_for(self, email: str | None) -> bool:
        """Whether the link was sent to this address."""
        return email is not None and email.strip().lower() in self.recipients


LinkOutcome = Literal["redeemed", "not_yours", "expired"]


async def sign_in_link(
    conn: AsyncConnection, token: str, *, now: datetime, lock: bool = False
) -> SignInLink | None:
    """The link a token names if it can still be used (None: unknown, expired or used),
    without using it: looking (an e-mail scanner's GET) must leave it working."""
    query = (select(sign_in_links.c.email_id, sign_in_links.c.school_urn,
                    sign_in_links.c.la_code, emails.c.to_addrs)
             .join(emails, emails.c.id == sign_in_links.c.email_id, isouter=True)
             .where(sign_in_links.c.token_hash == _hash(token),
                    sign_in_links.c.used_at.is_(None), sign_in_links.c.expires_at > now))
    row = (await conn.execute(query.with_for_update(of=sign_in_links) if lock else query)
           ).first()
    if row is None:
        return None
    sent_to = Recipients.from_json(row.to_addrs).addresses if row.to_addrs else []
    return SignInLink(row.email_id, row.school_urn, row.la_code,
                      frozenset(a.strip().lower() for a in sent_to))


async def redeem_sign_in_link(
    conn: AsyncConnection, token: str, *, now: datetime, email: str | None
) -> LinkOutcome:
    """Use a sign-in link once, as the signed-in person whose address is `email`: only one of
    the people it was sent to may; for anyone else it stays as it was."""
    link = await sign_in_link(conn, token, now=now, lock=True)
    if link is None:
        return "expired"
    if not link.is_for(email):
        return "not_yours"
    await conn.execute(update(sign_in_links).where(sign_in_links.c.token_hash == _hash(token))
                       .values(used_at=now))
    return "redeemed"


_CLAIM_RECIPIENTS = text(
    "SELECT key FROM unnest(CAST(:keys AS text[])) AS key "
    "WHERE pg_try_advisory_xact_lock(hashtext('notifier-recipient:' || key))"
)


def due_notifications(now: datetime) -> Any:
    """Notifications with a step due at `now` (a superset: services/notifier/chain.py decides)."""
    n = notifications.c
    unplanned_duty = and_(n.duty_at.is_(None),
                          or_(n.school_urn.is_(None), n.escalations_sent >= 2,
                              n.la_since.is_not(None)))
    return or_(
        and_(n.state == "scheduled", n.push_at <= now),
        and_(n.state.in_(AWAITING), or_(
            and_(n.school_urn.is_not(None), n.escalations_sent == 0, n.deputy_at <= now),
            and_(n.school_urn.is_not(None), n.escalations_sent == 1, n.la_at <= now),
            n.duty_at <= now, unplanned_duty)))


def due_recipients(now: datetime, limit: int) -> Any:
    """The recipients with a step due, whole recipients per pass (so a school with many due
    notifications gets one e-mail), longest waiting first (ix_notifications_due and
    ix_notifications_awaiting)."""
    n = notifications.c
    return (select(n.recipient_key).where(due_notifications(now)).group_by(n.recipient_key)
            .order_by(func.min(n.push_at)).limit(limit))


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
    service_desk: str = SERVICE_DESK_EMAIL

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
        """One pass: plan every step due now (one step can make the next due too), then
        deliver staged e-mails and webhooks; count work."""
        done = 0
        while planned := await self.plan_due() + await self.plan_reviews():
            done += planned
        while await self.deliver_one_email():
            done += 1
        while await self.deliver_one_webhook():
            done += 1
        return done

    async def plan_due(self) -> int:
        """Take each due notification one step along its chain, one e-mail per recipient;
        count the notifications moved."""
        now = self.clock()
        n = notifications.c
        due = due_notifications(now)
        async with UnitOfWork(self.engine) as uow:
            keys = list((await uow.conn.execute(due_recipients(now, self.batch_size))).scalars())
            mine = await _claim(uow.conn, keys)
            rows = (await uow.conn.execute(
                select(notifications).where(due, n.recipient_key.in_(mine))
                .order_by(n.push_at).with_for_update(skip_locked=True))).all() if mine else []
            befores = await _befores(uow.conn, {row.la_code for row in rows})
            groups: dict[tuple[ChainAction, str | None, str | None, str], list[Any]] = (
                defaultdict(list))
            for row in rows:
                step = next_step(Chain.of(row), before=befores[row.la_code])
                if step is not None and step.due_at <= now:
                    # the duty manager hears once for all of the LA's schools in the pass
                    urn = None if step.action == "call_duty_manager" else row.school_urn
                    groups[(step.action, urn, row.la_code, step.role)].append(row)
            moves: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
            for (action, urn, la, role), members in groups.items():
                queued = await queue_email(
                    uow.conn, kind=EMAIL_KIND[action], school_urn=urn, la_code=la,
                    recipient_role=role,
                    notification_ids=[m.id for m in members], now=now,
                    service_desk=self.service_desk)
                for member in members:
                    moves[action == "send"].append(await self._move(
                        uow.conn, member, action, queued.recipients, now,
                        before=befores[member.la_code], email_id=queued.email_id))
            for sent, values in moves.items():  # every row's new chain in one execution
                if values:
                    await uow.conn.execute(_MOVE_SENT if sent else _MOVE,
                                           json_rows_param(values))
            await uow.commit()
        return sum(len(m) for m in groups.values())

    async def _move(self, conn: AsyncConnection, row: Any, action: ChainAction,
                    to: Recipients, now: datetime, *, before: timedelta,
                    email_id: uuid.UUID) -> dict[str, Any]:
        """The row's chain after `action`, as a row of `_MOVE` (or `_MOVE_SENT`); what
        it announces and audits is staged here."""
        moved = after(Chain.of(row), action, now, before=before)
        # a notice nobody at its school or LA could take went further: audited as escalations
        strayed = to.role != row.recipient_role and to.role not in SCHOOL_ROLES
        if to.role not in SCHOOL_ROLES:
            moved = handed_to_la(moved, now, before=before)  # the LA was sent it: theirs too
        values = {"id": row.id, **_chain_values(moved, before=before)}
        if action == "send":
            values |= {"sent_at": now, "email_id": email_id}
        await announce_escalated(conn, row, action=action, at=now, topic_prefix=self.topic_prefix)
        if action != "send" or strayed:
            await audit_sent_about(conn, topic_prefix=self.topic_prefix, notification=row,
                                   action="notification.escalated", at=now,
                                   purpose=f"unacknowledged: {EMAIL_KIND[action]} to {to.role}")
        return values

    async def plan_reviews(self) -> int:
        """Tell LAs of their reviews waiting and overdue (services/notifier/review_alerts.py)."""
        now = self.clock()
        a = review_alerts.c
        async with UnitOfWork(self.engine) as uow:
            las = list((await uow.conn.execute(
                select(a.la_code).where(due_alerts(now)).group_by(a.la_code)
                .order_by(func.min(a.duty_at)).limit(self.batch_size))).scalars())
            mine = await _claim(uow.conn, [f"review:{la}" for la in las])
            done = await plan_review_alerts(
                uow.conn, las=[key.removeprefix("review:") for key in mine], now=now,
                service_desk=self.service_desk) if mine else 0
            await uow.commit()
        return done

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
            if not Recipients.from_json(row.to_addrs).addresses:
                log.error("e-mail has no recipients", extra={"email_id": str(row.id)})
                values = {"status": "dead", "last_error": "no recipients"}
            else:
                values = await self._send(uow.conn, row, now)
            if values["status"] == "sent" and row.kind == "notice":
                await announce_pushed(uow.conn, notification_ids=row.notification_ids,
                                      channel="email", at=now, topic_prefix=self.topic_prefix)
            if values["status"] == "dead":
                values["handed_on_at"] = await self._hand_on(uow.conn, row, now)
            await uow.conn.execute(update(emails).where(emails.c.id == row.id).values(**values))
            await uow.commit()
        return True

    async def _send(self, conn: AsyncConnection, row: Any, now: datetime) -> dict[str, Any]:
        kind = cast(EmailKind, row.kind)
        token = None if kind == "retraction" else secrets.token_urlsafe(32)
        link = f"{self.portal_base_url}/portal/sign-in?token={token}" if token else None
        by = await earliest_deadline(conn, row.la_code, [
            uuid.UUID(i) for i in row.notification_ids]) if kind in REVIEW_KINDS else None
        subject, body = render_email(kind, name=row.subject_name, count=row.count, link=link,
                                     deadline_at=by)
        if token is not None:
            # committed before the e-mail leaves: a crash between sending and marking resends,
            # and the copy already delivered must not carry a link that was rolled back
            async with UnitOfWork(self.engine) as links:
                await links.conn.execute(insert(sign_in_links).values(
                    token_hash=_hash(token), email_id=row.id, school_urn=row.school_urn,
                    la_code=row.la_code, expires_at=now + self.link_ttl))
                await links.commit()
        try:
            await self.mailer.send(to=Recipients.from_json(row.to_addrs).addresses,
                                   subject=subject, body=body,
                                   message_id=f"<{row.id}@daybreak>")
        except Exception as exc:
            return self._failed(row.attempts + 1, now, exc, channel="email")
        return {"status": "sent", "sent_at": now, "attempts": row.attempts + 1}

    async def _hand_on(self, conn: AsyncConnection, row: Any, now: datetime) -> datetime | None:
        """Tell the next person in line of a mail that failed for good; the school's
        notifications it was about become the LA's. When it was handed on, or None."""
        ids = [uuid.UUID(i) for i in row.notification_ids]
        about = (await conn.execute(select(notifications).where(
            notifications.c.id.in_(ids), notifications.c.state.in_(AWAITING))
            .with_for_update())).all() if ids else []
        if not about and row.kind not in REVIEW_KINDS:
            return None  # acknowledged or withdrawn since: nobody has anything left to do
        desk = await desk_of(conn, school_urn=row.school_urn, la_code=row.la_code)
        to = _next_in_line(desk, Recipients.from_json(row.to_addrs), self.service_desk)
        if to is None:
            log.error("a delivery failed for good and nobody is left to tell",
                      extra={"email_id": str(row.id), "kind": row.kind})
            return None
        for notification in about:
            moved = handed_to_la(Chain.of(notification), now, before=desk.before)
            await conn.execute(update(notifications).where(notifications.c.id == notification.id)
                               .values(**_chain_values(moved, before=desk.before)))
            await audit_sent_about(conn, topic_prefix=self.topic_prefix, notification=notification,
                                   action="notification.escalated", at=now,
                                   purpose=f"delivery failed for good: handed on to {to.role}")
        await queue_email(conn, kind="delivery_failed", school_urn=row.school_urn,
                          la_code=row.la_code, recipient_role=to.role,
                          notification_ids=[n.id for n in about], now=now,
                          service_desk=self.service_desk, recipients=to,
                          count=len(about) or row.count)
        return now

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
                    await announce_webhook_pushed(uow.conn, body=row.body, at=now,
                                                  topic_prefix=self.topic_prefix)
                except Exception as exc:
                    values = self._failed(row.attempts + 1, now, exc, channel="webhook")
            await uow.conn.execute(update(webhook_deliveries).where(w.id == row.id)
                                   .values(**values))
            await uow.commit()
        return True

    def _failed(self, attempts: int, now: datetime, exc: Exception, *,
                channel: str) -> dict[str, Any]:
        # dead after max attempts, never retried on its own: a dead e-mail is handed on to
        # the next person in line; a dead webhook only logs (its school's e-mail still went)
        status = "dead" if attempts >= self.max_attempts else "pending"
        if status == "dead":
            log.error("delivery dead-lettered",
                      extra={"channel": channel, "exc_type": type(exc).__name__})
        return {"status": status, "attempts": attempts, "last_error": failure_reason(exc),
                "next_attempt_at": now + backoff_delay(attempts, base_s=self.backoff_s)}


def _next_in_line(desk: Desk, failed: Recipients, service_desk: str) -> Recipients | None:
    return hand_on_recipients(
        failed, school_contacts=desk.school.contacts if desk.school is not None else None,
        la_contacts=desk.la.contacts if desk.la is not None else None,
        service_desk=service_desk)


# the chain's columns a step writes: these as the chain holds them, and its deadline
_CARRIED = ("state", "escalations_sent", "la_since", "duty_at", "duty_calls")
_CHAIN = (*_CARRIED, "deadline_at")
_MOVE = update_json_rows(notifications, "id", _CHAIN)
_MOVE_SENT = update_json_rows(notifications, "id", [*_CHAIN, "sent_at", "email_id"])


def _chain_values(chain: Chain, *, before: timedelta) -> dict[str, Any]:
    return {name: getattr(chain, name) for name in _CARRIED} | {
        "deadline_at": deadline(chain, before=before)}


async def _claim(conn: AsyncConnection, keys: Sequence[str]) -> list[str]:
    # one dispatcher per recipient at a time (the others skip it this pass), so two
    # instances never split one school's morning into two e-mails
    if not keys:
        return []
    return list((await conn.execute(_CLAIM_RECIPIENTS, {"keys": list(keys)})).scalars())


async def _befores(conn: AsyncConnection, la_codes: set[str | None]) -> dict[str | None, timedelta]:
    """Each LA's minutes before a deadline at which its duty manager is called."""
    known = [code for code in la_codes if code]
    rows = (await conn.execute(select(local_authorities).where(
        local_authorities.c.la_code.in_(known)))).all() if known else []
    by_code = {row.la_code: row for row in rows}
    return {code: Desk(None, by_code.get(code or ""), code).before for code in la_codes}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
