"""Every open item of the safety net with its owner, its deadline and the next person told.

Open items: a notification not yet acknowledged, cancelled or retracted (at a school, or at
the LA: a child on no roll, at a school that cannot take it, reported absent, or whose
school's mail failed for good) and a review not yet resolved. Each names who is told next
and when, resolved through the same recipient rule the dispatcher uses, so the service desk
stands behind everyone. No child data: ids and roles only.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Row, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.chain import EMAIL_KIND, OPEN_STATES, Chain, deadline, next_step, owner
from services.notifier.channels import EmailKind
from services.notifier.models import (
    local_authorities,
    notification_children,
    notifications,
    review_alerts,
    schools,
)
from services.notifier.outgoing import Desk
from services.notifier.settings import SERVICE_DESK_EMAIL

ItemKind = Literal["review", "notification"]


@dataclass(frozen=True, slots=True)
class OpenItem:
    """Something someone must still act on, who that is, by when, and who is told next."""

    kind: ItemKind
    id: uuid.UUID
    la_code: str | None
    school_urn: str | None
    owner: str  # the contact role now responsible
    deadline_at: datetime
    next_at: datetime  # when the next person is told (a step due but not yet planned: then)
    next_role: str  # the contact role that will be told, after the recipient fallbacks
    next_addresses: list[str]
    child_ids: list[uuid.UUID]
    past_deadline: bool = False  # the owner's deadline has gone by (when they were read)

    def as_json(self) -> dict[str, Any]:
        """The item as `GET /v1/open-items` shows it."""
        return {"kind": self.kind, "id": str(self.id), "la_code": self.la_code,
                "school_urn": self.school_urn, "owner": self.owner,
                "deadline_at": self.deadline_at.isoformat(),
                "next_at": self.next_at.isoformat(), "next_role": self.next_role,
                "next_addresses": self.next_addresses,
                "child_ids": [str(c) for c in self.child_ids],
                "past_deadline": self.past_deadline}


async def open_items(
    conn: AsyncConnection, *, now: datetime, la_codes: Iterable[str] | None = None,
    service_desk: str = SERVICE_DESK_EMAIL,
) -> list[OpenItem]:
    """The open items of the LAs `la_codes` (None: of every LA), soonest next step first,
    as they stand at `now`: a step already due keeps `next_at <= now` until the dispatcher
    takes it."""
    codes = None if la_codes is None else sorted(set(la_codes))
    items = [*await _notifications(conn, codes, service_desk),
             *await _reviews(conn, codes, service_desk)]
    return sorted((replace(item, past_deadline=item.deadline_at < now) for item in items),
                  key=lambda item: item.next_at)


async def _notifications(conn: AsyncConnection, codes: list[str] | None,
                         service_desk: str) -> list[OpenItem]:
    rows = await _rows(conn, notifications, notifications.c.state.in_(OPEN_STATES), codes)
    children: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if rows:
        kids = await conn.execute(
            select(notification_children.c.notification_id, notification_children.c.child_id)
            .where(notification_children.c.notification_id.in_([r.id for r in rows]))
            .order_by(notification_children.c.child_id))
        for kid in kids:
            children[kid.notification_id].append(kid.child_id)
    desks = await _desks(conn, {(r.school_urn, r.la_code) for r in rows})
    items = []
    for row in rows:
        desk, chain = desks[(row.school_urn, row.la_code)], Chain.of(row)
        step = next_step(chain, before=desk.before)
        if step is None:
            continue
        told = desk.recipients(EMAIL_KIND[step.action], recipient_role=step.role,
                               service_desk=service_desk)
        items.append(OpenItem(
            "notification", row.id, row.la_code, row.school_urn, owner(chain),
            deadline(chain, before=desk.before), step.due_at, told.role, told.addresses,
            children[row.id]))
    return items


async def _reviews(conn: AsyncConnection, codes: list[str] | None,
                   service_desk: str) -> list[OpenItem]:
    rows = await _rows(conn, review_alerts, review_alerts.c.resolved_at.is_(None), codes)
    desks = await _desks(conn, {(None, r.la_code or None) for r in rows})
    items = []
    for row in rows:
        desk = desks[(None, row.la_code or None)]
        waiting = row.alerted_at is None
        kind: EmailKind = "review_waiting" if waiting else "review_overdue"
        told = desk.recipients(kind, recipient_role="review", service_desk=service_desk)
        items.append(OpenItem(
            "review", row.review_id, row.la_code or None, None,
            "duty_manager" if row.duty_calls else "review", row.deadline_at,
            row.alert_at if waiting else row.duty_at, told.role,
            told.addresses, [row.child_id]))
    return items


async def _rows(conn: AsyncConnection, table: Table, is_open: ColumnElement[bool],
                codes: list[str] | None) -> Sequence[Row[Any]]:
    query = select(table).where(is_open)
    if codes is not None:
        query = query.where(table.c.la_code.in_(codes))
    return (await conn.execute(query)).all()


async def _desks(conn: AsyncConnection, keys: set[tuple[str | None, str | None]]
                 ) -> dict[tuple[str | None, str | None], Desk]:
    """Each (school, LA) pair's rows in the copy, in two queries."""
    urns = sorted({urn for urn, _ in keys if urn})
    found_schools = {r.urn: r for r in (await conn.execute(
        select(schools).where(schools.c.urn.in_(urns)))).all()} if urns else {}
    codes = {code for _, code in keys if code} | {s.la_code for s in found_schools.values()}
    found_las = {r.la_code: r for r in (await conn.execute(
        select(local_authorities).where(local_authorities.c.la_code.in_(sorted(codes)))
    )).all()} if codes else {}
    desks = {}
    for urn, code in keys:
        school = found_schools.get(urn or "")
        la_code = school.la_code if school is not None else code
        desks[(urn, code)] = Desk(school, found_las.get(la_code or ""), la_code)
    return desks
