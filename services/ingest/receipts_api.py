"""Receipts for police: the force's changed incidents, paged, and its signed webhook."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from schemas.incidents import ForceCode
from services.common.auth_api import require_scope
from services.common.db import UnitOfWork
from services.common.problems import Problem, documented_rules, problem_responses
from services.common.safe_http import refuse_unsafe_registration
from services.common.security import Principal
from services.common.webhook_signing import WebhookUrl
from services.ingest import receipts_webhooks
from services.ingest.context import IngestCtx
from services.ingest.receipts_view import changed_incidents

router = APIRouter(tags=["receipts"])
Police = Annotated[Principal, Depends(require_scope("incidents:write"))]
ForcePath = Annotated[str, Path(pattern=ForceCode.__metadata__[0].pattern)]
_ERRORS = problem_responses(401, 403, 404)
MAX_LIMIT = 200
# RFC 3339's date-time (ASCII digits, an offset or Z), what `updated_since` must be
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                      r"([Zz]|[+-][0-9]{2}:[0-9]{2})")
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"  # unpadded URL-safe base64
_LIST_RULES = documented_rules(
    "cursor is one a page of this list gave",
    "updated_since names a real instant (no 31 February, no leap second) within years 1 to "
    "9999 in UTC")
_WEBHOOK_RULES = documented_rules(
    "url is https (http only to loopback where the deployment allows it), names a host "
    "that is not a private, loopback, link-local or metadata address, and carries no "
    "credentials")


class ReceiptsWebhookIn(BaseModel):
    """Where the force's system takes its receipt changes, and the HMAC secret that signs them."""

    model_config = ConfigDict(extra="forbid")
    url: WebhookUrl
    secret: SecretStr = Field(min_length=32, max_length=256)


def _bad_query(field: str, message: str) -> Problem:
    return Problem(422, "Invalid query", f"{field} {message}.",
                   extra={"errors": [{"field": field, "message": message}]})


def encode_cursor(after: int, since: datetime | None) -> str:
    """An opaque cursor: where the next page starts, and the filter it pages."""
    raw = json.dumps({"after": after, "since": since.isoformat() if since else None})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, datetime | None]:
    """The position and filter a cursor holds; 422 for anything this API did not make."""
    try:
        data = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                           validate=True))
        after, since = data["after"], data["since"]
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**63:
            raise ValueError("position")
        return after, _aware(since) if since is not None else None
    except (ValueError, TypeError, KeyError, OverflowError, binascii.Error) as exc:
        raise _bad_query("cursor", "is not a cursor this API gave") from exc


def _aware(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError("no offset")
    return at.astimezone(UTC)  # OverflowError at the ends of the calendar


def parse_since(value: str) -> datetime:
    """An RFC 3339 time with its offset; 422 otherwise."""
    try:
        if not _RFC3339.fullmatch(value):
            raise ValueError("not RFC 3339")
        return _aware(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise _bad_query("updated_since", "must be an RFC 3339 time with an offset") from exc


@router.get("/v1/incidents", responses=problem_responses(401, 403), openapi_extra=_LIST_RULES)
async def list_incidents(
    principal: Police, ctx: IngestCtx,
    updated_since: Annotated[str | None, Query(
        max_length=64, json_schema_extra={"format": "date-time"})] = None,
    cursor: Annotated[str | None, Query(max_length=500, pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """The force's incidents whose receipt changed (since `updated_since`), oldest change
    first, each as `GET /v1/incidents/{id}` shows it; `next_cursor` is null on the last page."""
    after, since = decode_cursor(cursor) if cursor else (0, None)
    if cursor is None and updated_since is not None:
        since = parse_since(updated_since)
    items, last = await changed_incidents(_force(principal), after=after, since=since,
                                          limit=limit, uow=ctx.uow())
    return {"items": items,
            "next_cursor": encode_cursor(last, since) if last is not None else None}


def _force(principal: Principal) -> str:
    if principal.force_code is None:
        raise Problem(403, "Forbidden", "This credential reports for no force.")
    return principal.force_code


def _own(force_code: str, principal: Principal) -> str:
    # another force's webhook is none of the caller's: 404, as another force's incident is
    if principal.force_code != force_code:
        raise Problem(404, "Not found", "No such force for your credential.")
    return force_code


@router.put("/v1/forces/{force_code}/receipts-webhook", status_code=200,
            openapi_extra=_WEBHOOK_RULES, responses={201: {"description": "Created"}, **_ERRORS})
async def put_receipts_webhook(force_code: ForcePath, body: ReceiptsWebhookIn,
                               principal: Police, ctx: IngestCtx) -> JSONResponse:
    """Register (201) or replace (200) where the force's receipt changes are POSTed, signed."""
    refuse_unsafe_registration(body.url, field="url",
                               allow_loopback=ctx.settings.webhook_allow_loopback)
    uow: UnitOfWork = ctx.uow()
    created = await receipts_webhooks.put_webhook(
        _own(force_code, principal), url=body.url, secret=body.secret.get_secret_value(),
        uow=uow, now=ctx.clock())
    view = await receipts_webhooks.webhook_view(force_code, uow=ctx.uow())
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("/v1/forces/{force_code}/receipts-webhook", responses=_ERRORS)
async def get_receipts_webhook(force_code: ForcePath, principal: Police,
                               ctx: IngestCtx) -> dict[str, Any]:
    """The force's receipts webhook URL (never its secret)."""
    return await receipts_webhooks.webhook_view(_own(force_code, principal), uow=ctx.uow())


@router.delete("/v1/forces/{force_code}/receipts-webhook", status_code=204,
               response_class=Response, responses=_ERRORS)
async def delete_receipts_webhook(force_code: ForcePath, principal: Police,
                                  ctx: IngestCtx) -> Response:
    """Stop posting the force's receipt changes."""
    await receipts_webhooks.delete_webhook(_own(force_code, principal), uow=ctx.uow())
    return Response(status_code=204)
