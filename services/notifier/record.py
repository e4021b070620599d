"""The school's own record of a notification: a chronology entry its safeguarding record
system can import (docs/chronology.md), as JSON or as CSV with a row per child, and
`GET /v1/notifications/{id}/record`. Each download is an audited disclosure per child,
staged before the body is built; the entry holds only what the force's profile lets the
school see."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from schemas.disclosures import Channel
from services.common.csv_safe import FORMULA_STARTS
from services.common.disclosure import record_disclosure
from services.common.local_time import LONDON
from services.common.problems import Problem, problem_responses
from services.common.security import Principal
from services.notifier import api
from services.notifier.actions import actions_of
from services.notifier.content import opened_children, opened_notification
from services.notifier.context import NotifierContext
from services.notifier.models import notification_children, notifications, schools
from services.notifier.portal_labels import ACTION_LABELS, INCIDENT_TYPES
from services.notifier.settings import NotifierSettings

router = APIRouter(prefix="/v1/notifications", tags=["notifications"],
                   responses=problem_responses(401, 403))
FORMAT = "daybreak-chronology/1"
SOURCE = "Police (Operation Encompass)"
PURPOSE = "school safeguarding record"
CHILD_FIELDS = ("gender", "present_at_incident", "voice_of_child", "address", "upn",
                "school_hint")
CSV_COLUMNS = (
    "incident_date_time", "incident_type", "source", "force", "incident_reference",
    "given_name", "family_name", "date_of_birth", *CHILD_FIELDS, "incident_summary",
    "school_urn", "school_name", "received_at", "acknowledged_at", "actions",
    "attended_next_morning", "notification_id", "notification_link",
)


def neutralised(value: str) -> str:
    """The cell as text a spreadsheet will not run."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _london(value: datetime | str | None) -> str | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(LONDON).isoformat()


def chronology_entry(row: Mapping[str, Any], children: Sequence[Mapping[str, Any]], *,
                     school_name: str | None, link: str, exported_at: datetime,
                     recorded: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The chronology entry of a notification (its row, its children's rows, and the actions
    the school recorded: `actions.actions_of` with notes)."""
    shown = api.disclosed_view(row["incident"], children)
    incident = shown["incident"]
    fields = set(row["incident"].get("disclosure_fields", []))
    kind = incident.get("incident_type")
    actions = ([{"at": _london(row["acknowledged_at"]), "kind": "acknowledged",
                 "description": row["action_taken"] or ""}] if row["acknowledged_at"] else [])
    actions += [{"at": done["on"], "kind": ACTION_LABELS.get(done["type"], done["type"])
                 + (" (follow-up)" if done.get("follow_up") else ""),
                 "description": done.get("note") or ""} for done in recorded]
    return {
        "format": FORMAT, "exported_at": _london(exported_at), "source": SOURCE,
        "force": incident["force_code"],
        "incident_reference": row["incident"].get("incident_reference")
        if "incident_reference" in fields else None,
        "incident_date_time": _london(incident.get("occurred_at")),
        "incident_type": kind, "incident_type_label": INCIDENT_TYPES.get(kind or "", kind),
        "incident_summary": incident.get("summary"),
        "school": {"urn": row["school_urn"], "name": school_name} if row["school_urn"] else None,
        "la_code": row["la_code"],
        "children": [
            {k: v for k, v in child.items() if k in ("given_name", "family_name",
                                                       "date_of_birth", *CHILD_FIELDS)}
            | {"attended_next_morning": stored.get("attended"),
               "attendance_recorded_at": _london(stored.get("attendance_at"))}
            for child, stored in zip(shown["children"], children, strict=True)],
        "actions": actions,
        "notification": {"id": str(row["id"]), "link": link, "state": row["state"],
                         "received_at": _london(row["created_at"]),
                         "pushed_at": _london(row["sent_at"]),
                         "first_viewed_at": _london(row["viewed_at"]),
                         "acknowledged_at": _london(row["acknowledged_at"])},
    }


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "address" and isinstance(value, Mapping):
        return ", ".join(str(value[k]) for k in ("line1", "line2", "town", "postcode")
                         if value.get(k))
    if key == "school_hint" and isinstance(value, Mapping):
        return " ".join(p for p in (value.get("name") or "", f"(URN {value['urn']})"
                                    if value.get("urn") else "") if p)
    return str(value)


def chronology_csv(entry: Mapping[str, Any]) -> str:
    """The entry as CSV: a header, then one row per child, every cell neutralised."""
    school, note = entry["school"] or {}, entry["notification"]
    shared = {
        "incident_date_time": entry["incident_date_time"],
        "incident_type": entry["incident_type_label"], "source": entry["source"],
        "force": entry["force"], "incident_reference": entry["incident_reference"],
        "incident_summary": entry["incident_summary"], "school_urn": school.get("urn"),
        "school_name": school.get("name"), "received_at": note["received_at"],
        "acknowledged_at": note["acknowledged_at"], "notification_id": note["id"],
        "notification_link": note["link"],
        "actions": "; ".join(f"{a['at']} {a['kind']}: {a['description']}".rstrip(": ")
                             for a in entry["actions"])}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for child in entry["children"]:
        values = shared | child | {"attended_next_morning": child["attended_next_morning"]}
        writer.writerow([neutralised(_cell(k, values.get(k))) for k in CSV_COLUMNS])
    return buffer.getvalue()


async def export_record(ctx: NotifierContext, notification_id: uuid.UUID,
                        principal: Principal, *, channel: Channel) -> dict[str, Any]:
    """The chronology entry, each child's disclosure staged and committed before it is built."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        row = (await uow.conn.execute(select(notifications).where(
            notifications.c.id == notification_id, api._visible(principal)))).first()
        if row is None:
            raise Problem(404, "Not found")
        if row.state in ("cancelled", "retracted"):
            raise Problem(410, "Withdrawn", "The police withdrew this notification.")
        children = [dict(r._mapping) for r in (await uow.conn.execute(
            select(notification_children).where(
                notification_children.c.notification_id == row.id)
            .order_by(notification_children.c.child_id))).all()]
        school_name = (await uow.conn.execute(select(schools.c.name).where(
            schools.c.urn == row.school_urn))).scalar_one_or_none()
        recorded = (await actions_of(uow.conn, [row.id], notes=True))[row.id]
        for child in children:
            await record_disclosure(
                uow.conn, source=ctx.settings.topic(api.SOURCE),
                topic_prefix=ctx.settings.topic_prefix, principal=principal,
                action="notification.export", channel=channel, purpose=PURPOSE,
                child_key=child["child_key"], at=now, school_urn=row.school_urn,
                la_code=row.la_code, notification_id=row.id, incident_id=row.incident_id)
        await uow.commit()
    ctx.wake_relay()
    base = ctx.settings.portal_base_url.rstrip("/") if isinstance(
        ctx.settings, NotifierSettings) else ""
    # opened once each child's disclosure is committed
    return chronology_entry(opened_notification(ctx.engine, row._mapping),
                            opened_children(ctx.engine, children), school_name=school_name,
                            link=f"{base}/portal/notifications/{row.id}", exported_at=now,
                            recorded=recorded)


def record_response(entry: Mapping[str, Any], fmt: Literal["json", "csv"]) -> Response:
    """The entry as a download named after its notification."""
    name = f"daybreak-notification-{entry['notification']['id']}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        return Response(chronology_csv(entry), media_type="text/csv; charset=utf-8",
                        headers=headers)
    return JSONResponse(dict(entry), headers=headers)


@router.get("/{notification_id}/record", responses=problem_responses(404, 410))
async def get_record(
    notification_id: uuid.UUID, principal: api.Reader, ctx: api.Ctx,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Response:
    """The notification as a chronology entry for the school's own records (audited)."""
    return record_response(await export_record(ctx, notification_id, principal,
                                               channel="export"), fmt)
