"""The child's history beside a notification: for the school's people, the same child's
earlier notifications at this school in the previous 12 months (when, what kind of incident,
what was done); for an LA officer, how many notifications the child had across the LA's
schools in 12 months. Each history shown is an audited disclosure ("history.read"), staged
in the caller's transaction before anything is shown.

A child is the same child when a key of theirs matches: the stored (current) key, and the v1
key of a child whose v1 key is theirs alone (services/common/pseudonym.lookup_keys), so the
rows stored before the re-key (services/notifier/rekey.py) are found too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.disclosures import Channel
from services.common.disclosure import record_disclosure
from services.common.pseudonym import Secrets, lookup_keys
from services.common.security import Principal
from services.notifier.actions import actions_of
from services.notifier.context import NotifierContext
from services.notifier.models import notification_children, notifications
from services.notifier.outgoing import OUTBOX_SOURCE

WITHDRAWN = ("cancelled", "retracted")  # reports the police took back are no history
ACTION = "history.read"
PURPOSE = "operation_encompass"


def window_start(at: datetime) -> datetime:
    """The same moment 12 months earlier (29 February falls back to the 28th)."""
    try:
        return at.replace(year=at.year - 1)
    except ValueError:
        return at.replace(year=at.year - 1, day=28)


def keys_of(secret: Secrets, child_row: Mapping[str, Any]) -> list[str]:
    """Every key the child's earlier rows may be stored under (the stored one first)."""
    child = child_row["child"]
    keys = lookup_keys(secret, given_name=child["given_name"], family_name=child["family_name"],
                       date_of_birth=date.fromisoformat(child["date_of_birth"]))
    return list(dict.fromkeys([child_row["child_key"], *keys.values()]))


def _earlier(row: Any, keys: Sequence[str]) -> ColumnElement[bool]:
    n, c = notifications.c, notification_children.c
    return and_(c.child_key.in_(keys), n.id != row.id, n.state.not_in(WITHDRAWN),
                n.created_at >= window_start(row.created_at), n.created_at < row.created_at)


async def school_history(conn: AsyncConnection, row: Any, keys: Sequence[str]
                         ) -> list[dict[str, Any]]:
    """The child's earlier notifications at this school, newest first (no notes)."""
    n, c = notifications.c, notification_children.c
    found = (await conn.execute(
        select(n.id, n.created_at, n.incident, n.acknowledged_at).distinct()
        .join(notification_children, c.notification_id == n.id)
        .where(_earlier(row, keys), n.school_urn == row.school_urn)
        .order_by(n.created_at.desc()))).all()
    done = await actions_of(conn, (f.id for f in found), notes=False)
    return [{"notification_id": str(f.id), "received_at": f.created_at.isoformat(),
             "incident_type": f.incident.get("incident_type"),
             "acknowledged_at": f.acknowledged_at.isoformat() if f.acknowledged_at else None,
             "actions": [{"type": a["type"], "on": a["on"]} for a in done.get(f.id, [])]}
            for f in found]


async def la_count(conn: AsyncConnection, row: Any, keys: Sequence[str]) -> dict[str, int]:
    """How many earlier notifications the child had across the LA's schools in 12 months,
    and at how many schools."""
    n, c = notifications.c, notification_children.c
    counted = (await conn.execute(
        select(func.count(n.id.distinct()), func.count(n.school_urn.distinct()))
        .join(notification_children, c.notification_id == n.id)
        .where(_earlier(row, keys), n.la_code == row.la_code,
               n.school_urn.is_not(None)))).one()
    return {"notifications": counted[0], "schools": counted[1]}


async def read_histories(
    conn: AsyncConnection, ctx: NotifierContext, row: Any,
    children: Sequence[Mapping[str, Any]], principal: Principal, *, channel: Channel,
    at: datetime,
) -> list[dict[str, Any]]:
    """Each child's history the person may see, its disclosure staged first: a school's people
    see the school's history, an LA officer the LA's count; anyone else nothing."""
    school = row.school_urn is not None and row.school_urn in principal.school_urns
    officer = principal.role == "la_officer" and row.la_code in principal.la_codes
    if not (school or officer):
        return []
    secret = ctx.deps.child_key_secret
    shown = []
    for child in children:
        await record_disclosure(
            conn, source=ctx.settings.topic(OUTBOX_SOURCE),
            topic_prefix=ctx.settings.topic_prefix, principal=principal, action=ACTION,
            channel=channel, purpose=PURPOSE, child_key=child["child_key"], at=at,
            school_urn=row.school_urn, la_code=row.la_code, notification_id=row.id,
            incident_id=row.incident_id)
        keys = keys_of(secret, child)
        entry: dict[str, Any] = {"child_id": str(child["child_id"])}
        if school:
            entry["earlier"] = await school_history(conn, row, keys)
        else:
            entry["la"] = await la_count(conn, row, keys)
        shown.append(entry)
    return shown


def by_child(histories: Sequence[Mapping[str, Any]]) -> dict[uuid.UUID, Mapping[str, Any]]:
    """The histories by child id (for the page, beside each child)."""
    return {uuid.UUID(h["child_id"]): h for h in histories}
