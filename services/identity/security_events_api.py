"""`GET /v1/security-events`: the sign-in record, for admins, a page at a time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel

from services.common.auth_api import require_scope
from services.common.problems import problem_responses
from services.common.security import Principal
from services.identity.api import Ctx
from services.identity.security_events import MAX_PAGE, list_events

router = APIRouter(tags=["accounts"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]


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


@router.get("/v1/security-events", response_model=SecurityEventsPage,
            responses=problem_responses(401, 403, 422))
async def list_security_events(
    principal: Admin, ctx: Ctx,
    since: Annotated[AwareDatetime | None, Query(description="events at or after")] = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Sign-ins and refusals from `since`, oldest first, a page at a time."""
    async with ctx.engine.connect() as conn:
        found, after = await list_events(conn, since=since, limit=limit,
                                         cursor=int(cursor) if cursor else None)
    return {"events": found, "next_cursor": after}
