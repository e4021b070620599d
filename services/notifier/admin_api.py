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
from services.notifier.recipients import Recipients

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]
Ctx = Annotated[AppContext, Depends(get_ctx)]


@router.get("/dead", responses=problem_responses(401, 403))
async def dead_deliveries(principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Webhooks and e-mails that ran out of attempts, newest first, for an operator to chase;
    each e-mail says which contact role it was for and when it was handed on to the next."""
    w, e = webhook_deliveries.c, emails.c
    async with ctx.engine.connect() as conn:
        hooks = (await conn.execute(
            select(w.id, w.school_urn, w.attempts, w.created_at, w.last_error)
            .where(w.status == "dead").order_by(w.created_at.desc()).limit(500))).all()
        mails = (await conn.execute(
            select(e.id, e.kind, e.school_urn, e.la_code, e.attempts, e.created_at,
                   e.last_error, e.to_addrs, e.handed_on_at)
            .where(e.status == "dead").order_by(e.created_at.desc()).limit(500))).all()
    return {
        "webhooks": [{**r._mapping, "created_at": r.created_at.isoformat()} for r in hooks],
        "emails": [_dead_email(r) for r in mails],
    }


def _dead_email(row: Any) -> dict[str, Any]:
    out = {k: v for k, v in row._mapping.items() if k != "to_addrs"}
    return out | {"id": str(row.id), "created_at": row.created_at.isoformat(),
                  "to_role": Recipients.from_json(row.to_addrs).role or None,
                  "handed_on_at": row.handed_on_at.isoformat() if row.handed_on_at else None}
