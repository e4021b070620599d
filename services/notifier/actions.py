"""Structured actions: what a school (or LA) did about a notification, with the day it did it
and an optional note in its own words, recorded with the acknowledgement and as follow-ups.

The notes stay here (the notification's details show them, an audited read); the
`notifications.v1` events carry each action's type and day only.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    String,
    Table,
    Text,
    Uuid,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.notifications import (
    ACTION_TYPES,
    NOTE_MAX,
    Action,
    ActionNote,
    ActionType,
    NotificationAcknowledged,
    NotificationActionAdded,
)
from services.common.db import metadata
from services.common.local_time import LONDON
from services.common.problems import Problem
from services.common.sealed_columns import aad, open_text, seal_text
from services.common.sealing import sealing_of
from services.common.security import Principal

notification_actions = Table(
    "notification_actions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("notification_id", Uuid, ForeignKey("notifier.notifications.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("on_date", Date, nullable=False),
    Column("note", Text),
    Column("follow_up", Boolean, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    schema="notifier",
)


class ActionIn(BaseModel):
    """One action as the API (and the portal's form) takes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ActionType
    on: date
    note: ActionNote | None = None


def date_problem(on: date, *, received_at: datetime, now: datetime) -> str | None:
    """Why an action's day cannot be right (London days), or None: not after today, not
    before the notification was received."""
    if on > now.astimezone(LONDON).date():
        return "The date of an action cannot be in the future"
    if on < received_at.astimezone(LONDON).date():
        return "The date of an action cannot be before the notification was received"
    return None


def check_dates(actions: Sequence[ActionIn], *, received_at: datetime, now: datetime,
                field: str = "actions") -> None:
    """422 naming each action whose day cannot be right (no value echoed); `field` is the
    body's list of actions ("": the body is the one action)."""
    errors = [{"field": f"{field}[{i}].on" if field else "on", "message": why}
              for i, a in enumerate(actions)
              if (why := date_problem(a.on, received_at=received_at, now=now))]
    if errors:
        raise Problem(422, "Invalid action date", f"{len(errors)} action(s) have a date that "
                      "cannot be right.", extra={"errors": errors, "error_count": len(errors)})


async def record_actions(conn: AsyncConnection, notification_id: uuid.UUID,
                         actions: Sequence[ActionIn], *, principal: Principal, at: datetime,
                         follow_up: bool) -> None:
    """Store the actions (in the caller's transaction)."""
    if actions:
        sealing = sealing_of(conn)
        await conn.execute(insert(notification_actions), [{
            "notification_id": notification_id, "type": a.type, "on_date": a.on,
            "note": seal_text(sealing, a.note or None, at=at,
                              aad=_note_aad(notification_id, a.type)),
            "follow_up": follow_up, "recorded_at": at,
            "recorded_by": principal.subject} for a in actions])


async def actions_of(conn: AsyncConnection, notification_ids: Iterable[uuid.UUID], *,
                     notes: bool) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Each notification's actions in the order recorded (with notes only when asked: the
    notes are for the notification's own details)."""
    a = notification_actions.c
    wanted = sorted(set(notification_ids))
    found: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    if not wanted:
        return found
    rows = await conn.execute(select(notification_actions).where(
        a.notification_id.in_(wanted)).order_by(a.id))
    sealing = sealing_of(conn)
    for row in rows:
        shown = {"type": row.type, "on": row.on_date.isoformat(), "follow_up": row.follow_up,
                 "recorded_at": row.recorded_at.isoformat()}
        if notes:
            shown["note"] = open_text(sealing, row.note,
                                      aad=_note_aad(row.notification_id, row.type))
        found[row.notification_id].append(shown)
    return found


def _note_aad(notification_id: uuid.UUID, action_type: str) -> str:
    """Where a note belongs: its notification and its action's type (one of each a batch)."""
    return aad("notifier.notification_actions", notification_id, action_type, column="note")


def _about(row: Any, at: datetime) -> dict[str, Any]:
    """The fields every notification event has, from a notification row."""
    return {"incident_id": row.incident_id, "at": at, "notification_id": row.id,
            "force_code": row.incident["force_code"], "school_urn": row.school_urn,
            "la_code": row.la_code}


def acknowledged(row: Any, actions: Sequence[ActionIn], *, principal: Principal,
                 at: datetime) -> NotificationAcknowledged:
    """The acknowledgement's event: codes and days, never the notes."""
    return NotificationAcknowledged(**_about(row, at), acknowledger_role=principal.role,
                                    actions=[Action(type=a.type, on=a.on) for a in actions])


def action_added(row: Any, action: ActionIn, *, at: datetime) -> NotificationActionAdded:
    """A follow-up's event: its code and day, never the note."""
    return NotificationActionAdded(**_about(row, at), action=Action(type=action.type,
                                                                    on=action.on))


def actions_of_form(form: Mapping[str, Any]) -> tuple[list[ActionIn], list[dict[str, str]]]:
    """The acknowledgement form's actions: each ticked `action` (a type) with its `on-<type>`
    day and `note-<type>`; the errors link to the field to fix (no value echoed)."""
    chosen = list(dict.fromkeys(str(v) for v in _values(form, "action")))
    found = [_parsed(kind, form.get(f"on-{kind}"), form.get(f"note-{kind}"), suffix=f"-{kind}")
             for kind in chosen]
    errors = [e for _, e in found if e]
    if not chosen:
        errors.append({"href": "#action", "message": "Choose at least one action"})
    return [a for a, _ in found if a], errors


def action_of_form(form: Mapping[str, Any]) -> tuple[ActionIn | None, list[dict[str, str]]]:
    """The follow-up form's one action: `type`, `on` and `note`."""
    action, error = _parsed(str(form.get("type", "")), form.get("on"), form.get("note"),
                            suffix="", type_field="#type")
    return action, [error] if error else []


def date_errors(exc: Exception, actions: Sequence[ActionIn]) -> list[dict[str, str]]:
    """`check_dates`' refusal as the form's errors, each linking to its date field."""
    if not isinstance(exc, Problem) or exc.status != 422:
        return []
    return [{"href": _date_field(e["field"], actions), "message": e["message"]}
            for e in exc.extra.get("errors", [])]


def _date_field(field: str, actions: Sequence[ActionIn]) -> str:
    numbered = re.fullmatch(r"actions\[(\d+)\]\.on", field)
    return f"#on-{actions[int(numbered.group(1))].type}" if numbered else "#on"


def _parsed(kind: str, on: Any, note: Any, *, suffix: str, type_field: str = "#action"
            ) -> tuple[ActionIn | None, dict[str, str] | None]:
    if kind not in ACTION_TYPES:
        return None, {"href": type_field, "message": "Choose an action from the list"}
    try:
        return ActionIn.model_validate({"type": kind, "on": str(on or ""),
                                        "note": str(note or "") or None}), None
    except ValidationError as exc:
        if any(e["loc"][0] == "note" for e in exc.errors()):
            return None, {"href": f"#note{suffix}",
                          "message": f"Enter a note of {NOTE_MAX} characters or fewer"}
        return None, {"href": f"#on{suffix}", "message": "Enter the date as a real date"}


def _values(form: Mapping[str, Any], key: str) -> list[Any]:
    getlist = getattr(form, "getlist", None)
    if getlist is not None:
        return list(getlist(key))
    value = form.get(key)
    return [] if value is None else [value] if isinstance(value, str) else list(value)
