"""`/v1/notifications`: a school's DSLs (or an LA's officers) list, read and acknowledge;
`/v1/open-items`: what is still waiting for someone, for the LA (and admins)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, false, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.disclosures import Channel
from schemas.incidents import CHILD_DISCLOSABLE_FIELDS, INCIDENT_DISCLOSABLE_FIELDS
from schemas.notifications import ACTION_TYPES
from services.common.auth_api import current_principal, require_scope
from services.common.disclosure import record_disclosure
from services.common.paging import (
    CURSOR_RULES,
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    cut,
    decode_cursor,
    instant,
)
from services.common.problems import Problem, problem_responses
from services.common.security import Principal
from services.notifier import history
from services.notifier.actions import (
    ActionIn,
    acknowledged,
    action_added,
    actions_of,
    check_dates,
    record_actions,
)
from services.notifier.announce import announce_viewed
from services.notifier.chain import COLUMNS as CHAIN_COLUMNS
from services.notifier.chain import OPEN_STATES, Chain, owner
from services.notifier.content import opened_children, opened_notification, seal_action_taken
from services.notifier.context import NotifierContext, NotifierCtx
from services.notifier.domain import IllegalTransitionError, transition
from services.notifier.handlers import ABSENT_REASON, tell_la
from services.notifier.lifecycle import stage
from services.notifier.models import notification_children, notifications
from services.notifier.open_items import open_items
from services.notifier.outgoing import OUTBOX_SOURCE

router = APIRouter(prefix="/v1/notifications", tags=["notifications"],
                   responses=problem_responses(401, 403))
SOURCE = OUTBOX_SOURCE
_WITHDRAWN = ("cancelled", "retracted")
Reader = Annotated[Principal, Depends(require_scope("notifications:read"))]
Acker = Annotated[Principal, Depends(require_scope("notifications:ack"))]
Ctx = NotifierCtx


class AcknowledgeIn(BaseModel):
    """`POST /v1/notifications/{id}/acknowledge`."""

    model_config = ConfigDict(extra="forbid")
    action_taken: str | None = Field(default=None, max_length=2000)
    # what was done, each with its day (codes on notifications.v1, notes kept here)
    actions: list[ActionIn] | None = Field(default=None, min_length=1,
                                           max_length=len(ACTION_TYPES))
    # false: the child was not at school the morning after, so the LA is told at once
    attended: bool | None = None


def disclosed_view(
    incident: Mapping[str, Any], children: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """What the force lets the school see: its disclosure fields plus each child's names/DOB."""
    fields = set(incident.get("disclosure_fields", []))
    shown_incident = {"incident_id": incident["incident_id"], "force_code": incident["force_code"]}
    shown_incident |= {f: incident.get(f) for f in INCIDENT_DISCLOSABLE_FIELDS if f in fields}
    shown_children = []
    for row in children:
        child = row["child"]
        shown = {k: child[k] for k in ("given_name", "family_name", "date_of_birth")}
        shown |= {f: child.get(f) for f in CHILD_DISCLOSABLE_FIELDS if f in fields}
        # why the child reached the LA, and through which school (its URN and name)
        for key in ("unmatched_reason", "via_school_urn", "via_school_name"):
            if row.get(key):
                shown[key] = row[key]
        shown_children.append(shown)
    return {"incident": shown_incident, "children": shown_children}


@router.get("", responses=problem_responses(422), openapi_extra=CURSOR_RULES)
async def list_notifications(principal: Reader, ctx: Ctx, limit: Limit = DEFAULT_LIMIT,
                             cursor: Cursor = None) -> dict[str, Any]:
    """The caller's school(s)' notifications (an LA officer's: the LA's, and its schools'
    once the LA was sent them), newest first (then by id: a stable order), `limit` at a
    time; `next_cursor` is the `cursor` of the next page, null on the last. No child data."""
    n = notifications.c
    count = (select(func.count()).where(notification_children.c.notification_id == n.id)
             .scalar_subquery())
    shown = dict.fromkeys(("id", "la_code", "sent_at", "viewed_at", "acknowledged_at",
                           "created_at", "deadline_at", *CHAIN_COLUMNS))
    query = (select(*(n[name] for name in shown), count.label("children"))
             .where(_visible(principal)).order_by(n.created_at.desc(), n.id.desc())
             .limit(limit + 1))
    if cursor is not None:
        created, after = decode_cursor(cursor, instant, uuid.UUID)
        query = query.where(tuple_(n.created_at, n.id) < tuple_(created, after))
    async with ctx.engine.connect() as conn:
        rows, next_cursor = cut((await conn.execute(query)).all(), limit,
                                lambda r: (r.created_at.isoformat(), str(r.id)))
    return {"items": [_summary(r) for r in rows], "next_cursor": next_cursor}


@router.get("/{notification_id}", responses=problem_responses(404, 410))
async def get_notification(
    notification_id: uuid.UUID, principal: Reader, ctx: Ctx
) -> dict[str, Any]:
    """The details: an audited disclosure, recorded before anything is shown."""
    return await view_notification(ctx, notification_id, principal, channel="api")


async def view_notification(
    ctx: NotifierContext, notification_id: uuid.UUID, principal: Principal, *,
    channel: Channel,
) -> dict[str, Any]:
    """A notification's details; each child's disclosure is staged in the same transaction."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        row = await _locked(uow.conn, notification_id, principal)
        if row.state in _WITHDRAWN:
            raise Problem(410, "Withdrawn", "The police withdrew this notification.")
        children = [dict(r._mapping) for r in (await uow.conn.execute(
            select(notification_children).where(
                notification_children.c.notification_id == row.id)
            .order_by(notification_children.c.child_id))).all()]
        for child in children:
            await record_disclosure(
                uow.conn, source=ctx.settings.topic(SOURCE), topic_prefix=ctx.settings.topic_prefix,
                principal=principal, action="notification.view", channel=channel,
                purpose="operation_encompass", child_key=child["child_key"], at=now,
                school_urn=row.school_urn, la_code=row.la_code, notification_id=row.id,
                incident_id=row.incident_id)
        # opened once each child's disclosure is recorded
        children = opened_children(uow.conn, children)
        incident = opened_notification(uow.conn, row._mapping)["incident"]
        await announce_viewed(uow.conn, row, viewer_role=principal.role, at=now,
                              topic_prefix=ctx.settings.topic_prefix)
        state = transition(row.state, "view")
        await uow.conn.execute(update(notifications).where(notifications.c.id == row.id).values(
            state=state, viewed_at=func.coalesce(notifications.c.viewed_at, now)))
        histories = await history.read_histories(uow.conn, ctx, row, children, principal,
                                                 channel=channel, at=now)
        done = (await actions_of(uow.conn, [row.id], notes=True)).get(row.id, [])
        await uow.commit()
    ctx.wake_relay()
    # what police corrected after someone here had read it: versions, times, field names
    changes = {"version": row.incident_version, "changes": row.changes}
    return (_summary(row) | {"state": state, "actions": done, "history": histories}
            | disclosed_view(incident, children) | changes)


@router.post("/{notification_id}/acknowledge", responses=problem_responses(404, 409))
async def acknowledge(
    notification_id: uuid.UUID, body: AcknowledgeIn, principal: Acker, ctx: Ctx
) -> dict[str, Any]:
    """Record that the DSL (or, once it was sent to the LA, an LA officer) has read it and
    what they are doing about it; the escalation stops there."""
    return await acknowledge_notification(ctx, notification_id, body, principal, channel="api")


async def acknowledge_notification(
    ctx: NotifierContext, notification_id: uuid.UUID, body: AcknowledgeIn, principal: Principal,
    *, channel: Channel,
) -> dict[str, Any]:
    """Acknowledge; a child reported absent is told to the LA, audited, in the same step."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        row = await _locked(uow.conn, notification_id, principal)
        try:
            state = transition(row.state, "acknowledge")
        except IllegalTransitionError as exc:
            raise Problem(409, "Cannot acknowledge", str(exc)) from None
        actions = body.actions or []
        check_dates(actions, received_at=row.created_at, now=now)
        await uow.conn.execute(update(notifications).where(notifications.c.id == row.id).values(
            state=state, acknowledged_at=now, acknowledged_by=principal.subject,
            action_taken=seal_action_taken(uow.conn, row.id, _with_attendance(body), at=now)))
        await record_actions(uow.conn, row.id, actions, principal=principal, at=now,
                             follow_up=False)
        await stage(uow.conn, acknowledged(row, actions, principal=principal, at=now),
                    topic_prefix=ctx.settings.topic_prefix)
        if body.attended is False and row.school_urn is not None:
            await _report_absence(uow.conn, ctx, row, principal, channel=channel)
        await uow.commit()
    ctx.wake_relay()
    return {"id": str(row.id), "state": state, "acknowledged_at": now.isoformat()}


@router.post("/{notification_id}/actions", status_code=201,
             responses=problem_responses(404, 409))
async def add_action(
    notification_id: uuid.UUID, body: ActionIn, principal: Acker, ctx: Ctx
) -> dict[str, Any]:
    """A follow-up action, once the notification is acknowledged (409 before)."""
    return await add_follow_up(ctx, notification_id, body, principal)


async def add_follow_up(ctx: NotifierContext, notification_id: uuid.UUID, body: ActionIn,
                        principal: Principal) -> dict[str, Any]:
    """Record a follow-up and stage its (content-free) event in the same transaction."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        row = await _locked(uow.conn, notification_id, principal)
        if row.state != "acknowledged":
            raise Problem(409, "Not acknowledged",
                          "Follow-up actions are added after the acknowledgement.")
        check_dates([body], received_at=row.created_at, now=now, field="")
        await record_actions(uow.conn, row.id, [body], principal=principal, at=now,
                             follow_up=True)
        await stage(uow.conn, action_added(row, body, at=now),
                    topic_prefix=ctx.settings.topic_prefix)
        await uow.commit()
    ctx.wake_relay()
    return {"id": str(row.id), "action": body.model_dump(mode="json")}


def _with_attendance(body: AcknowledgeIn) -> str | None:
    if body.attended is None:
        return body.action_taken
    said = "yes" if body.attended else "no"
    return f"{body.action_taken or ''}; attended this morning: {said}".lstrip("; ")


async def _report_absence(
    conn: AsyncConnection, ctx: NotifierContext, row: Any, principal: Principal, *,
    channel: Channel,
) -> None:
    """Tell the LA safeguarding contact, each child's disclosure recorded with it."""
    children = [dict(r._mapping) for r in (await conn.execute(
        select(notification_children).where(
            notification_children.c.notification_id == row.id))).all()]
    await tell_la(conn, ctx.deps, notification=row, children=children, principal=principal,
                  channel=channel, reason=ABSENT_REASON, action="absence.report",
                  purpose="child absent the morning after an incident",
                  topic_prefix=ctx.settings.topic_prefix)


def _visible(principal: Principal) -> ColumnElement[bool]:
    """Its school's people see a school's notifications; an LA's officers see the LA's own
    and its schools' once the LA was sent them (escalated, or a delivery failed for good)."""
    n = notifications.c
    own: list[ColumnElement[bool]] = []
    if principal.school_urns:
        own.append(n.school_urn.in_(sorted(principal.school_urns)))
    if principal.role == "la_officer" and principal.la_codes:
        own.append(and_(n.la_code.in_(sorted(principal.la_codes)),
                        or_(n.school_urn.is_(None), n.la_since.is_not(None))))
    return or_(*own) if own else false()


async def _locked(conn: AsyncConnection, notification_id: uuid.UUID, principal: Principal) -> Any:
    # another school's notification is indistinguishable from one that does not exist
    row = (await conn.execute(select(notifications).where(
        notifications.c.id == notification_id, _visible(principal)).with_for_update())).first()
    if row is None:
        raise Problem(404, "Not found")
    return row


def _summary(row: Any) -> dict[str, Any]:
    fields = row._mapping
    out = {k: fields.get(k) for k in ("school_urn", "la_code", "state")}
    for k in ("push_at", "sent_at", "viewed_at", "acknowledged_at", "created_at",
              "deadline_at", "la_since"):
        out[k] = fields[k].isoformat() if fields.get(k) else None
    # who must act now: a contact role ("dsl", "deputy_dsl", "safeguarding", "duty_manager")
    out["owner"] = owner(Chain.of(row)) if row.state in OPEN_STATES else None
    if "children" in fields:
        out["children"] = fields["children"]
    return {"id": str(fields["id"]), **out}


async def open_items_reader(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    """LA officers (their LAs' items) and admins (every item)."""
    if "admin" in principal.scopes or (
            principal.role == "la_officer" and "notifications:read" in principal.scopes):
        return principal
    raise Problem(403, "Forbidden", "This credential may not do that.")


open_items_router = APIRouter(prefix="/v1/open-items", tags=["open items"],
                              responses=problem_responses(401, 403))


@open_items_router.get("")
async def list_open_items(
    principal: Annotated[Principal, Depends(open_items_reader)], ctx: Ctx
) -> dict[str, Any]:
    """Every open item of the caller's LAs: owner, deadline, who is told next and when; ids
    and roles only, no child data."""
    las = None if "admin" in principal.scopes else principal.la_codes
    async with ctx.engine.connect() as conn:
        items = await open_items(conn, now=ctx.clock(), la_codes=las,
                                 service_desk=ctx.deps.service_desk)
    return {"items": [item.as_json() for item in items]}
