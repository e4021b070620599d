"""A force's receipts webhook: registering it, queueing each receipt change for it, and
posting the queue signed as schools' webhooks are, with retries and backoff until dead."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db import UnitOfWork, any_of
from services.common.safe_http import failure_reason
from services.common.webhook_signing import WebhookPoster, backoff_delay
from services.ingest.receipts_models import receipt_deliveries, receipt_webhooks
from services.ingest.receipts_view import receipts_of

log = logging.getLogger(__name__)
d = receipt_deliveries.c


async def put_webhook(force_code: str, *, url: str, secret: str, uow: UnitOfWork,
                      now: datetime) -> bool:
    """Set where the force takes its receipt changes; True when it had no webhook before."""
    async with uow:
        existed = (await uow.conn.execute(select(receipt_webhooks.c.force_code).where(
            receipt_webhooks.c.force_code == force_code).with_for_update())).first()
        stmt = insert(receipt_webhooks).values(force_code=force_code, url=url, secret=secret,
                                               updated_at=now)
        await uow.conn.execute(stmt.on_conflict_do_update(
            index_elements=[receipt_webhooks.c.force_code],
            set_={"url": url, "secret": secret, "updated_at": now}))
        await uow.commit()
    return existed is None


async def webhook_view(force_code: str, *, uow: UnitOfWork) -> dict[str, Any]:
    """The force's webhook as its client sees it: the URL (null: none), never the secret."""
    async with uow:
        row = (await uow.conn.execute(select(receipt_webhooks.c.url, receipt_webhooks.c.updated_at)
                                      .where(receipt_webhooks.c.force_code == force_code))).first()
    return {"force_code": force_code, "url": row.url if row else None,
            "updated_at": row.updated_at.isoformat() if row else None}


async def delete_webhook(force_code: str, *, uow: UnitOfWork) -> None:
    """Stop posting receipt changes (what is still queued is dropped when its turn comes)."""
    async with uow:
        await uow.conn.execute(delete(receipt_webhooks)
                               .where(receipt_webhooks.c.force_code == force_code))
        await uow.commit()


async def enqueue_deliveries(conn: AsyncConnection,
                             changes: Sequence[tuple[Any, int, str, datetime]], *,
                             now: datetime) -> None:
    """Queue each (incident row, change number, change, when)'s receipt as it now is for its
    force's webhook, if the force has one: a constant number of statements however many."""
    forces = sorted({incident.force_code for incident, *_ in changes})
    hooked = set((await conn.execute(select(receipt_webhooks.c.force_code).where(
        receipt_webhooks.c.force_code == any_of(forces)))).scalars()) if forces else set()
    due = [change for change in changes if change[0].force_code in hooked]
    if not due:
        return
    receipts = await receipts_of(conn, [incident for incident, *_ in due])
    await conn.execute(receipt_deliveries.insert(), [{
        "force_code": incident.force_code, "incident_id": incident.incident_id,
        "body": json.dumps({"incident_id": str(incident.incident_id),
                            "incident_reference": incident.incident_reference,
                            "change": change, "sequence": seq, "at": at.isoformat(),
                            "receipt": receipt}).encode(),
        "next_attempt_at": now, "created_at": now,
    } for (incident, seq, change, at), receipt in zip(due, receipts, strict=True)])


class ReceiptDeliverer:
    """Posts due receipt deliveries one at a time; a failure waits longer each time and is
    dead after `max_attempts` (the receipt stays readable by `GET /v1/incidents`)."""

    def __init__(self, *, engine: AsyncEngine, poster: WebhookPoster,
                 clock: Callable[[], datetime], max_attempts: int, backoff_s: float) -> None:
        self.engine = engine
        self.poster = poster
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s

    async def deliver_one(self) -> bool:
        """Post the next due delivery; False when none is waiting."""
        now = self.clock()
        async with UnitOfWork(self.engine) as uow:
            row = (await uow.conn.execute(
                select(receipt_deliveries).where(d.status == "pending", d.next_attempt_at <= now)
                .order_by(d.next_attempt_at, d.id).limit(1)
                .with_for_update(skip_locked=True))).first()
            if row is None:
                return False
            hook = (await uow.conn.execute(select(receipt_webhooks).where(
                receipt_webhooks.c.force_code == row.force_code))).first()
            values: dict[str, Any] = {"status": "dropped", "last_error": "webhook removed"}
            if hook is not None:
                values = await self._post(row, url=hook.url, secret=hook.secret, now=now)
            await uow.conn.execute(update(receipt_deliveries).where(d.id == row.id)
                                   .values(**values))
            await uow.commit()
        return True

    async def _post(self, row: Any, *, url: str, secret: str, now: datetime) -> dict[str, Any]:
        attempts = row.attempts + 1
        try:
            await self.poster.post(url, secret=secret, body=row.body,
                                   timestamp=int(now.timestamp()), delivery_id=str(row.id))
        except Exception as exc:
            status = "dead" if attempts >= self.max_attempts else "pending"
            if status == "dead":
                log.error("receipt delivery dead-lettered",
                          extra={"force": row.force_code, "exc_type": type(exc).__name__})
            return {"status": status, "attempts": attempts, "last_error": failure_reason(exc),
                    "next_attempt_at": now + backoff_delay(attempts, base_s=self.backoff_s)}
        return {"status": "delivered", "delivered_at": now, "attempts": attempts}

    async def run(self, stop: asyncio.Event, *, interval_s: float) -> None:
        """Deliver what is due every `interval_s` until stopped."""
        while not stop.is_set():
            try:
                while not stop.is_set() and await self.deliver_one():
                    pass
            except Exception as exc:
                log.warning("receipt deliveries stopped on %s; retrying", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
