"""Delivery channels: content-free e-mail over SMTP and HMAC-signed webhooks over HTTPS."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from typing import Literal, Protocol

import aiosmtplib

from services.common.local_time import LONDON
from services.common.webhook_signing import (
    HttpxWebhookPoster,
    WebhookPoster,
    backoff_delay,
    sign_webhook,
)

# the webhook pieces live in services/common/webhook_signing.py (ingest signs forces' receipts
# the same way); re-exported for the notifier's modules that import them from here
__all__ = ["HttpxWebhookPoster", "WebhookPoster", "backoff_delay", "sign_webhook"]

EmailKind = Literal[
    "notice", "escalation_deputy", "escalation_la", "escalation_duty", "retraction",
    "review_waiting", "review_overdue", "delivery_failed", "attendance_prompt"]
REVIEW_KINDS: frozenset[EmailKind] = frozenset({"review_waiting", "review_overdue"})


class Mailer(Protocol):
    """Sends one e-mail or raises."""

    async def send(self, *, to: list[str], subject: str, body: str, message_id: str) -> None: ...


def render_email(kind: EmailKind, *, name: str, count: int, link: str | None,
                 deadline_at: datetime | None = None) -> tuple[str, str]:
    """Subject and body of a content-free e-mail: who it is for, how many, by when, where to
    sign in. No child data: a count, a school's or LA's name and a time only."""
    plural = "notification" if count == 1 else "notifications"
    if kind == "retraction":
        return (f"Operation Encompass: a notification for {name} was withdrawn",
                f"The police have withdrawn {count} Operation Encompass {plural} sent to "
                f"{name}. No action is needed; any details you saw should be disregarded.\n")
    if kind in REVIEW_KINDS:
        subject, lead = _review_text(kind, name=name, count=count, deadline_at=deadline_at)
    elif kind == "notice":
        subject = f"Operation Encompass: {count} new {plural} for {name}"
        lead = f"{name} has {count} new Operation Encompass {plural}."
    elif kind == "attendance_prompt":
        subject = f"Operation Encompass: attendance not yet recorded at {name}"
        lead = (f"{name} has {count} Operation Encompass {plural} from this morning whose "
                "children's attendance is not yet recorded. Please record it; if it is still "
                "unknown later this morning, the local authority is told.")
    elif kind == "delivery_failed":
        subject = f"Operation Encompass: {count} {plural} for {name} could not be delivered"
        lead = (f"An Operation Encompass e-mail about {count} {plural} for {name} could not "
                "be delivered, so they are passed to you to act on.")
    else:
        subject = f"Operation Encompass: {count} unacknowledged {plural} for {name}"
        lead = (f"{count} Operation Encompass {plural} for {name} "
                "have not been acknowledged in time and are escalated to you.")
    body = f"{lead}\n\nSign in to read and acknowledge: {link}\n\n" if link else f"{lead}\n"
    return subject, body + "This e-mail holds no details; they are shown only after sign-in.\n"


def spoken_time(at: datetime) -> str:
    """A moment as people read it, in London: "Monday 23 November, 8:45am"."""
    local = at.astimezone(LONDON)
    hour = local.hour % 12 or 12
    return (f"{local:%A} {local.day} {local:%B}, {hour}:{local:%M}"
            f"{'am' if local.hour < 12 else 'pm'}")


def _review_text(kind: EmailKind, *, name: str, count: int,
                 deadline_at: datetime | None) -> tuple[str, str]:
    reviews = "a review is" if count == 1 else f"{count} reviews are"
    by = f", deadline {spoken_time(deadline_at)}" if deadline_at else ""
    if kind == "review_waiting":
        return (f"Operation Encompass: {reviews} waiting for {name}{by}",
                f"For {name}, {reviews} waiting in the Operation Encompass review queue{by}.")
    return (f"Operation Encompass: {reviews} overdue for {name}{by}",
            f"For {name}, {reviews} still not resolved{by}; they are escalated to you.")


class SmtpMailer:
    """aiosmtplib with one connection per message; the dispatcher retries failures."""

    def __init__(self, *, host: str, port: int, sender: str, starttls: bool = False,
                 timeout_s: float = 10) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.timeout_s = timeout_s

    async def send(self, *, to: list[str], subject: str, body: str, message_id: str) -> None:
        """Send one plain-text message with a stable Message-ID (receivers can dedupe)."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message["Message-ID"] = message_id
        message.set_content(body)
        await aiosmtplib.send(message, hostname=self.host, port=self.port,
                              start_tls=self.starttls, timeout=self.timeout_s)
