"""The notifier's child data at rest: each notification's incident summary and each
`notification_children.child`, sealed per row (services/common/sealed_columns.py; AAD the
table, the row's key and the column), with the keyring the connection's engine carries.
Readers open them after the disclosure is recorded."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.crypto import KeyShredded
from services.common.sealed_columns import (
    INCIDENT_CLEAR,
    aad,
    open_column,
    open_text,
    seal,
    seal_at,
    seal_text,
    shredded_problem,
)
from services.common.sealing import sealing_of
from services.notifier.models import notification_children, notifications

NOTIFICATIONS = "notifier.notifications"
CHILDREN = "notifier.notification_children"
Bound = AsyncConnection | AsyncEngine  # whose engine carries the keyring


def seal_incident(bound: Bound, notification_id: uuid.UUID,
                  incident: Mapping[str, Any], *, at: datetime) -> Any:
    """`notifications.incident` as stored: ids, codes and times clear, the summary sealed."""
    return seal(sealing_of(bound), dict(incident), aad=aad(NOTIFICATIONS, notification_id,
                                                 column="incident"), at=at, clear=INCIDENT_CLEAR)


def seal_child(bound: Bound, notification_id: uuid.UUID, child_id: uuid.UUID,
               child: Mapping[str, Any], *, at: datetime) -> Any:
    """`notification_children.child` as stored: sealed whole."""
    return seal(sealing_of(bound), dict(child), aad=aad(CHILDREN, notification_id, child_id,
                                              column="child"), at=at)


def seal_action_taken(bound: Bound, notification_id: uuid.UUID, text: str | None, *,
                      at: datetime) -> str | None:
    """`notifications.action_taken` as stored: the school's words, sealed."""
    return seal_text(sealing_of(bound), text, at=at,
                     aad=aad(NOTIFICATIONS, notification_id, column="action_taken"))


def opened_notification(bound: Bound, row: Mapping[Any, Any]) -> dict[str, Any]:
    """A notification row (its mapping) with its incident (and the action taken, when
    selected) opened; 410 once shredded."""
    sealing, opened = sealing_of(bound), dict(row)
    try:
        opened["incident"] = open_column(sealing, row["incident"],
                                         aad=aad(NOTIFICATIONS, row["id"], column="incident"))
        if "action_taken" in opened:
            opened["action_taken"] = open_text(
                sealing, row["action_taken"],
                aad=aad(NOTIFICATIONS, row["id"], column="action_taken"))
    except KeyShredded:
        raise shredded_problem() from None
    return opened


def opened_children(bound: Bound, rows: Iterable[Mapping[Any, Any]]
                    ) -> list[dict[str, Any]]:
    """`notification_children` rows as dicts, each child opened; 410 once shredded."""
    sealing = sealing_of(bound)
    try:
        return [dict(row) | {"child": open_column(
            sealing, row["child"], aad=aad(CHILDREN, row["notification_id"], row["child_id"],
                                           column="child"))} for row in rows]
    except KeyShredded:
        raise shredded_problem() from None


async def reseal(engine: AsyncEngine, *, now: datetime, batch: int = 500) -> int:
    """Seal what the notifier stored clear before sealing (`daybreak reseal`): incidents that
    still hold a clear summary, children still clear; how many rows were sealed."""
    n, c = notifications.c, notification_children.c
    done = 0
    while True:
        async with engine.begin() as conn:
            sealing = sealing_of(conn)
            found = (await conn.execute(select(n.id, n.incident, n.created_at).where(
                n.incident.has_key("summary")).limit(batch)
                .with_for_update(skip_locked=True))).all()
            for row in found:
                await conn.execute(update(notifications).where(n.id == row.id).values(
                    incident=seal_at(sealing, row.incident, written_at=row.created_at, now=now,
                                     aad=aad(NOTIFICATIONS, row.id, column="incident"),
                                     clear=INCIDENT_CLEAR)))
            kids = (await conn.execute(
                select(c.notification_id, c.child_id, c.child, n.created_at)
                .join(notifications, n.id == c.notification_id)
                .where(c.child.has_key("given_name")).limit(batch)
                .with_for_update(of=notification_children, skip_locked=True))).all()
            for kid in kids:
                await conn.execute(update(notification_children).where(
                    c.notification_id == kid.notification_id, c.child_id == kid.child_id,
                ).values(child=seal_at(sealing, kid.child, written_at=kid.created_at, now=now,
                                       aad=aad(CHILDREN, kid.notification_id, kid.child_id,
                                               column="child"))))
        done += len(found) + len(kids)
        if len(found) < batch and len(kids) < batch:
            return done
