"""`/portal/notifications/{id}/record.json|.csv`: "Download for your safeguarding records",
the notification as a chronology entry (services/notifier/record.py), audited per child."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.common.problems import Problem
from services.notifier.portal_pages import (
    SecureRoute,
    ctx_of,
    problem_page,
    signed_in,
    to_sign_in,
)
from services.notifier.record import export_record, record_response

router = APIRouter(route_class=SecureRoute)


async def _download(request: Request, notification_id: str,
                    fmt: Literal["json", "csv"]) -> Response:
    principal = await signed_in(request, "notifications:read")
    if principal is None:
        return to_sign_in()
    try:
        entry = await export_record(ctx_of(request), uuid.UUID(notification_id), principal,
                                    channel="export")
    except (ValueError, Problem) as exc:
        return await problem_page(request, exc)
    return record_response(entry, fmt)


@router.get("/notifications/{notification_id}/record.json")
async def record_json(request: Request, notification_id: str) -> Response:
    """The chronology entry as JSON."""
    return await _download(request, notification_id, "json")


@router.get("/notifications/{notification_id}/record.csv")
async def record_csv(request: Request, notification_id: str) -> Response:
    """The chronology entry as CSV, a row per child."""
    return await _download(request, notification_id, "csv")
