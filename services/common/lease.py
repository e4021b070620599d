"""One relay per outbox source: a lease row, renewed in short transactions and fenced by epoch.

Nothing is held between transactions (no session advisory lock, no idle connection), so the
relay works through a pooler in transaction mode. A relay takes the lease only when it is
free or expired, each take-over bumps the epoch, and every write a leader makes first renews
the lease under its own holder and epoch in the same transaction: the row stays locked until
that transaction ends, so a relay that lost the lease (paused longer than it lasts) can no
longer write, and a take-over waits for the holder's write in progress and then sees it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.models import outbox_leases


class LeaseLost(Exception):
    """Another relay holds the source's lease now: this one must write nothing more."""


class Lease:
    """A relay's hold on one source, valid `seconds` after each renewal (the database's clock)."""

    def __init__(self, *, source: str, seconds: float, holder: uuid.UUID | None = None) -> None:
        self.source = source
        self.seconds = seconds
        # a Worker's relays, run one after another, share one holder: a restarted relay
        # takes back at once the lease its predecessor could not release (database away)
        self.holder = holder or uuid.uuid4()
        self.epoch: int | None = None  # the take-over this relay holds, None when it holds none
        self._renewed_at = 0.0

    @property
    def renew_every(self) -> float:
        """How often a holder renews: a third of the lease, so two renewals may fail in time."""
        return self.seconds / 3

    def renew_due(self) -> bool:
        """Whether a third of the lease has passed since the last renewal."""
        return asyncio.get_running_loop().time() - self._renewed_at >= self.renew_every

    async def acquire(self, engine: AsyncEngine) -> bool:
        """Take the lease if it is free, expired or this holder's (a new epoch, fencing any
        earlier relay of this holder); False while another holds it."""
        started = asyncio.get_running_loop().time()
        new = pg_insert(outbox_leases).values(
            source=self.source, holder=self.holder, expires_at=self._until(), epoch=1)
        taken = new.on_conflict_do_update(
            index_elements=["source"],
            set_={"holder": new.excluded.holder, "expires_at": new.excluded.expires_at,
                  "epoch": outbox_leases.c.epoch + 1},
            where=or_(outbox_leases.c.expires_at <= func.now(),
                      outbox_leases.c.holder == self.holder),
        ).returning(outbox_leases.c.epoch)
        async with engine.begin() as conn:
            epoch = (await conn.execute(taken)).scalar()
        if epoch is None:
            return False
        self.epoch, self._renewed_at = int(epoch), started
        return True

    async def fence(self, conn: AsyncConnection) -> None:
        """In the caller's transaction: renew the lease, locking its row until the transaction
        ends; raises LeaseLost if another relay took it since."""
        started = asyncio.get_running_loop().time()
        renewed = (await conn.execute(
            update(outbox_leases)
            .where(outbox_leases.c.source == self.source, outbox_leases.c.holder == self.holder,
                   outbox_leases.c.epoch == self.epoch)
            .values(expires_at=self._until())
            .returning(outbox_leases.c.epoch)
        )).first()
        if renewed is None:
            self.epoch = None
            raise LeaseLost(self.source)
        self._renewed_at = started

    async def renew(self, engine: AsyncEngine) -> None:
        """Renew the lease in a transaction of its own; raises LeaseLost if it was taken."""
        async with engine.begin() as conn:
            await self.fence(conn)

    async def release(self, engine: AsyncEngine) -> None:
        """Let the next relay take over at once (if this one still holds the lease)."""
        if self.epoch is None:
            return
        epoch, self.epoch = self.epoch, None
        async with engine.begin() as conn:
            await conn.execute(
                update(outbox_leases)
                .where(outbox_leases.c.source == self.source,
                       outbox_leases.c.holder == self.holder, outbox_leases.c.epoch == epoch)
                .values(expires_at=func.now()))

    def _until(self) -> ColumnElement[Any]:
        return func.now() + timedelta(seconds=self.seconds)
