"""An incident's receipt as its force sees it: what became of each child and notification.

No child data: children are named only by their place in the force's own report.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Row, Uuid, any_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import UnitOfWork
from services.ingest.models import child_withdrawals, incidents
from services.ingest.receipts_models import (
    receipt_children,
    receipt_incidents,
    receipt_notifications,
)

# each built once, with the incidents as one array parameter: the same SQL (one prepared
# statement) however many incidents, where `IN (…)` renders a placeholder per incident and
# asyncpg prepares a new statement for each count
_IDS = any_(bindparam("ids", type_=ARRAY(Uuid)))
_CHILDREN = select(receipt_children).where(receipt_children.c.incident_id == _IDS)
_NOTIFICATIONS = select(receipt_notifications).where(
    receipt_notifications.c.incident_id == _IDS)
_CHANGED = select(receipt_incidents.c.incident_id, receipt_incidents.c.updated_at).where(
    receipt_incidents.c.incident_id == _IDS)
_WITHDRAWN = select(child_withdrawals).where(child_withdrawals.c.incident_id == _IDS)


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _later(at: str, since: datetime | None) -> bool:
    return since is None or datetime.fromisoformat(at) >= since


def notification_view(row: Any) -> dict[str, Any]:
    """One notification's receipt; a child retracted after its children were last set is
    no longer one of them, and a notification whose every child was retracted is retracted."""
    retracted = [r for r in row.retracted_children if _later(r["at"], row.child_indexes_at)]
    gone = {r["child_index"] for r in retracted}
    children = list(row.child_indexes or [])
    left = [i for i in children if i not in gone]
    retracted_at, reason = row.retracted_at, row.retract_reason
    if children and not left and retracted_at is None:
        last = max(retracted, key=lambda r: datetime.fromisoformat(r["at"]))
        retracted_at, reason = datetime.fromisoformat(last["at"]), last["reason"]
    return {
        "notification_id": str(row.notification_id), "school_urn": row.school_urn,
        "la_code": row.la_code, "recipient_role": row.recipient_role,
        "child_indexes": left, "retracted_child_indexes": sorted(gone & set(children)),
        "scheduled_at": _at(row.scheduled_at), "push_at": _at(row.push_at),
        "deadline_at": _at(row.deadline_at), "pushed_at": _at(row.pushed_at),
        "first_viewed_at": _at(row.first_viewed_at), "acknowledged_at": _at(row.acknowledged_at),
        "escalations": sorted(row.escalations, key=lambda e: (e["at"], e["stage"])),
        "retracted_at": _at(retracted_at), "retract_reason": reason,
        "actions": sorted(row.actions, key=lambda a: (a["on"], a["type"])),
    }


def children_view(children_count: int, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Every reported child, with its outcome once the matcher or a reviewer decided it."""
    known = {row.child_index: row for row in rows}
    out = []
    for index in sorted(set(range(children_count)) | known.keys()):
        row = known.get(index)
        out.append({"child_index": index, "outcome": row.outcome if row else None,
                    "school_urns": list(row.school_urns) if row else [],
                    "la_code": row.la_code if row else None})
    return out


def _order(row: Any) -> tuple[bool, str, str]:
    return row.scheduled_at is None, _at(row.scheduled_at) or "", str(row.notification_id)


def projected(children_count: int, children: Sequence[Any],
              notifications: Sequence[Any]) -> dict[str, Any]:
    """The part of a receipt the lifecycle events make."""
    return {"children": children_view(children_count, children),
            "notifications": [notification_view(n) for n in sorted(notifications, key=_order)]}


def digest(part: dict[str, Any]) -> str:
    """A digest of the projected part, to tell a change from a repeat."""
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()


async def projected_rows(
    conn: AsyncConnection, ids: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[Row[Any]]], dict[uuid.UUID, list[Row[Any]]]]:
    """The children and notifications rows of each incident."""
    children: dict[uuid.UUID, list[Row[Any]]] = {i: [] for i in ids}
    notifications: dict[uuid.UUID, list[Row[Any]]] = {i: [] for i in ids}
    params = {"ids": list(ids)}
    for row in await conn.execute(_CHILDREN, params):
        children[row.incident_id].append(row)
    for row in await conn.execute(_NOTIFICATIONS, params):
        notifications[row.incident_id].append(row)
    return children, notifications


async def receipts_of(conn: AsyncConnection, incidents: Sequence[Any]) -> list[dict[str, Any]]:
    """The receipts of these `ingest.incidents` rows, in their order."""
    ids = [row.incident_id for row in incidents]
    children, notifications = await projected_rows(conn, ids)
    changed = {row.incident_id: row.updated_at
               for row in await conn.execute(_CHANGED, {"ids": ids})}
    withdrawn: dict[tuple[uuid.UUID, int], datetime] = {
        (row.incident_id, row.child_index): row.withdrawn_at
        for row in await conn.execute(_WITHDRAWN, {"ids": ids})}
    receipts = [{
        "incident_id": str(row.incident_id), "status": row.status,
        "incident_reference": row.incident_reference, "children_count": row.children_count,
        "received_at": row.received_at.isoformat(), "withdrawn_at": _at(row.withdrawn_at),
        "version": row.version,
        **projected(row.children_count, children[row.incident_id],
                    notifications[row.incident_id]),
        "updated_at": _at(max(d for d in (row.received_at, row.withdrawn_at,
                                          changed.get(row.incident_id)) if d)),
    } for row in incidents]
    for receipt in receipts:  # a child the force withdrew says so, and when
        for child in receipt["children"]:
            at = withdrawn.get((uuid.UUID(receipt["incident_id"]), child["child_index"]))
            child["withdrawn_at"] = _at(at)
    return receipts


async def changed_incidents(
    force_code: str, *, after: int, since: datetime | None, limit: int, uow: UnitOfWork
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the force's receipts changed after change number `after` (and at or after
    `since`), oldest change first, and the change number the next page starts after (None:
    this is the last page)."""
    r = receipt_incidents.c
    query = (select(incidents, r.change_seq)
             .join(receipt_incidents, r.incident_id == incidents.c.incident_id)
             .where(r.force_code == force_code, incidents.c.force_code == force_code,
                    r.change_seq > after))
    if since is not None:
        query = query.where(r.updated_at >= since)
    async with uow:
        rows = (await uow.conn.execute(query.order_by(r.change_seq).limit(limit + 1))).all()
        page = rows[:limit]
        items = await receipts_of(uow.conn, page)
    return items, page[-1].change_seq if len(rows) > limit else None
