"""`GET /v1/security-events`: the sign-in record, for admins, a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from services.common.auth_api import require_scope
from services.common.problems import Problem, documented_rules, problem_responses
from services.common.security import Principal
from services.identity.api import Ctx
from services.identity.security_events import MAX_PAGE, list_events

router = APIRouter(tags=["accounts"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]
# RFC 3339's date-time with its offset, in ASCII digits (a bare number is no time here)
_DATE_TIME = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
              r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
_SINCE_RULES = documented_rules(
    "since names a real instant (no 31 February, no leap second) within years 1 to 9999 in UTC")
Since = Annotated[str | None, Query(max_length=40, pattern=_DATE_TIME, description=(
    "events at or after this time"), json_schema_extra={"format": "date-time"})]


class SecurityEventOut(BaseModel):
    """One sign-in, failed sign-in or throttled refusal: never the e-mail or a secret."""

    id: int
    at: str
    kind: str
    outcome: str
    subject_hash: str
    client_address: str
    user_agent: str


class SecurityEventsPage(BaseModel):
    """Events in the order recorded; `next_cursor` asks for the next page (None: the last)."""

    events: list[SecurityEventOut]
    next_cursor: str | None


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):  # 31 February, 23:59:60, or past year 9999 in UTC
        raise Problem(422, "Invalid query", "since is not a real time with an offset.",
                      extra={"errors": [{"field": "since", "message": "not a real time"}]}
                      ) from None


@router.get("/v1/security-events", response_model=SecurityEventsPage,
            responses=problem_responses(401, 403, 422), openapi_extra=_SINCE_RULES)
async def list_security_events(
    principal: Admin, ctx: Ctx, since: Since = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Sign-ins and refusals from `since`, oldest first, a page at a time."""
    async with ctx.engine.connect() as conn:
        found, after = await list_events(conn, since=_instant(since) if since else None,
                                         limit=limit,
                                         cursor=int(cursor) if cursor else None)
    return {"events": found, "next_cursor": after}
