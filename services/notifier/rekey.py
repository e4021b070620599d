"""The re-key of children the notifier stored before child_key v2 or under a rotated-out secret.

`notification_children.child_key` is copied into every disclosure the notifier records
about a child (a view, an escalation, a retraction, a hand-over to the LA), so a row
written under a v1 key would keep logging v1 keys after the upgrade, and for a name
without Latin letters that v1 key is shared with other children born that day. The
notifier therefore recomputes the current key from the stored child once, in the
background after it starts; rows already at the current version are left alone, so
later starts find nothing to do. After `daybreak pseudonym rotate` the same pass moves every
stored child to the new current secret's key, so disclosures stop naming the old one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.pseudonym import Secrets, child_key, current_prefix
from services.notifier.content import opened_children
from services.notifier.models import notification_children

log = logging.getLogger(__name__)


def current_key(secret: Secrets, child: dict[str, Any]) -> str:
    """The current key of a child as stored in `notification_children.child`."""
    return child_key(secret, given_name=child["given_name"], family_name=child["family_name"],
                     date_of_birth=date.fromisoformat(child["date_of_birth"]))


async def rekey_children(engine: AsyncEngine, secret: Secrets, *, batch: int = 500) -> int:
    """Give every stored child under an older key its current key; how many were re-keyed.

    Rows another transaction holds are skipped (it, or the next start, re-keys them).
    """
    c = notification_children.c
    done = 0
    while True:
        async with engine.begin() as conn:
            rows = (await conn.execute(
                select(c.notification_id, c.child_id, c.child)
                .where(c.child_key.not_like(f"{current_prefix(secret)}%"))
                .limit(batch).with_for_update(skip_locked=True))).all()
            for row in opened_children(conn, (r._mapping for r in rows)):
                await conn.execute(update(notification_children).where(
                    c.notification_id == row["notification_id"], c.child_id == row["child_id"],
                ).values(child_key=current_key(secret, row["child"])))
        done += len(rows)
        if len(rows) < batch:
            return done


async def rekey_in_background(engine: AsyncEngine, secret: Secrets, *, retry_s: float) -> None:
    """`rekey_children` until it gets through, retrying while the database is away."""
    while True:
        try:
            done = await rekey_children(engine, secret)
        except (OSError, SQLAlchemyError) as exc:
            log.warning("re-keying stored children failed", extra={"exc_type": type(exc).__name__})
            await asyncio.sleep(retry_s)
            continue
        if done:
            log.info("re-keyed stored children to the current child_key", extra={"count": done})
        return
