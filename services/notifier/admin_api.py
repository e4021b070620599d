"""Admin view of deliveries that gave up: dead-lettered webhooks and e-mails (no content)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy import select

from services.common.auth_api import require_scope
from services.common.context import AppContext, get_ctx
from services.common.problems import problem_responses
from services.common.security import Principal
from services.notifier.models import emails, webhook_deliveries

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]
Ctx = Annotated[AppContext, Depends(get_ctx)]


@router.get("/dead", responses=problem_responses(401, 403))
async def dead_deliveries(principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Webhooks and e-mails that ran out of attempts, newest first, for an operator to chase."""
    w, e = webhook_deliveries.c, emails.c
    async with ctx.engine.connect() as conn:
        hooks = (await conn.execute(
            select(w.id, w.school_urn, w.attempts, w.created_at, w.last_error)
            .where(w.status == "dead").order_by(w.created_at.desc()).limit(500))).all()
        mails = (await conn.execute(
            select(e.id, e.kind, e.school_urn, e.la_code, e.attempts, e.created_at,
                   e.last_error)
            .where(e.status == "dead").order_by(e.created_at.desc()).limit(500))).all()
    return {
        "webhooks": [{**r._mapping, "created_at": r.created_at.isoformat()} for r in hooks],
        "emails": [{**r._mapping, "id": str(r.id), "created_at": r.created_at.isoformat()}
                   for r in mails],
    }
