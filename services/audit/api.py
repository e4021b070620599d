"""Audit routes (auditors only): events, CSV export, verify, proofs, subject access."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from schemas.incidents import IsoDate, refuse_numbers
from services.audit import proofs
from services.audit.context import AuditCtx
from services.audit.handlers import AuditDeps, record_access
from services.audit.queries import (
    EventFilter,
    csv_lines,
    decode_cursor,
    encode_cursor,
    list_events,
    verify_report,
)
from services.audit.settings import AuditSettings
from services.common.auth_api import require_scope
from services.common.problems import Problem, documented_rules, problem_responses
from services.common.pseudonym import KEY_PATTERN, lookup_keys
from services.common.security import Principal

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=problem_responses(401, 403))
Auditor = Annotated[Principal, Depends(require_scope("audit:read"))]
_SUBJECT_ACCESS_LIMIT = 10_000
URN_PATTERN = r"^[0-9]{6,7}$"
_MAX_TREE_SIZE = 2**63 - 1  # tree sizes are BIGINT: a larger one can name no head


async def get_deps(ctx: AuditCtx) -> AuditDeps:
    """The audit service's consumer and signer state."""
    return ctx.deps


async def get_settings(ctx: AuditCtx) -> AuditSettings:
    """The audit settings the app was built with."""
    if not isinstance(ctx.settings, AuditSettings):
        raise TypeError("the audit app needs AuditSettings")
    return ctx.settings


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _iso_text(value: Any) -> Any:
    """A query's time as ISO 8601 text, never a bare number read as a Unix timestamp."""
    refuse_numbers(value)
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time")
    return value


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
QueryTime = Annotated[datetime, BeforeValidator(_iso_text)]


async def event_filter(
    school_urn: Annotated[str | None, Query(pattern=URN_PATTERN)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    child_key: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
    from_at: Annotated[QueryTime | None, Query(alias="from")] = None,
    to_at: Annotated[QueryTime | None, Query(alias="to")] = None,
) -> EventFilter:
    """The contract's filters (naive times are taken as UTC; `to` is exclusive). A school is a
    URN and a child a child key of either version: a filter is written into the log (the
    search is itself audited) and exported, so nothing else gets in."""
    return EventFilter(school_urn, actor, child_key, _utc(from_at), _utc(to_at))


Deps = Annotated[AuditDeps, Depends(get_deps)]
Filter = Annotated[EventFilter, Depends(event_filter)]


@router.get("/events", openapi_extra=documented_rules(
    "`cursor` is a `next_cursor` this service gave", status=400))
async def events(
    auditor: Auditor, deps: Deps, flt: Filter, cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Events in log order, filtered, one keyset page at a time (each page an audited read).

    The first page pins the log as it stood before its own audit entry; the cursor carries
    that bound, so later pages neither shift nor include the auditor's own reads.
    """
    try:
        after, pinned = decode_cursor(cursor) if cursor else (0, None)
    except ValueError:
        raise Problem(400, "Invalid cursor", "Use next_cursor from a previous page.") from None
    before_read = await record_access(deps, auditor, action="audit.events.read", channel="api",
                                      purpose="audit review", child_key=flt.child_key,
                                      school_urn=flt.school_urn)
    upto = before_read if pinned is None else min(pinned, before_read)
    async with deps.engine.connect() as conn:
        page, last = await list_events(conn, flt, upto=upto, after=after, limit=limit)
    return {"events": page, "next_cursor": None if last is None else encode_cursor(last, upto)}


@router.get("/events.csv", response_class=StreamingResponse)
async def events_csv(auditor: Auditor, deps: Deps, flt: Filter) -> StreamingResponse:
    """The filtered log as CSV, streamed (the export is audited before it starts)."""
    upto = await record_access(deps, auditor, action="audit.events.export", channel="export",
                               purpose="audit export", child_key=flt.child_key,
                               school_urn=flt.school_urn)
    return StreamingResponse(
        csv_lines(deps.engine, flt, upto=upto), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'},
    )


@router.get("/verify")
async def verify(
    auditor: Auditor, deps: Deps, settings: Annotated[AuditSettings, Depends(get_settings)],
) -> dict[str, Any]:
    """Check the hash chain, the Merkle roots, every signed tree head and the witnesses'
    cosignatures; acknowledged breaks are listed (`breaks`), never hidden."""
    return await verify_report(deps.engine, settings)


@router.get("/events/{event_id}/proof", responses=problem_responses(404, 409))
async def proof(auditor: Auditor, deps: Deps, event_id: uuid.UUID) -> dict[str, Any]:
    """The event's inclusion proof against the latest signed tree head."""
    return await proofs.inclusion(deps, event_id)


@router.get("/consistency", responses=problem_responses(404, 409),
            openapi_extra=documented_rules("`from` is at most `to`"))
async def consistency(
    auditor: Auditor, deps: Deps,
    first: Annotated[int, Query(alias="from", ge=1, le=_MAX_TREE_SIZE)],
    second: Annotated[int, Query(alias="to", ge=1, le=_MAX_TREE_SIZE)],
) -> dict[str, Any]:
    """The proof that the earlier signed head is a prefix of the later one."""
    return await proofs.consistency(deps, first, second)


class SubjectAccessIn(BaseModel):
    """Whose events to find; the name is used to derive the child key and never stored."""

    model_config = ConfigDict(extra="forbid")
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: IsoDate


@router.post("/subject-access")
async def subject_access(
    body: SubjectAccessIn, auditor: Auditor, deps: Deps,
    settings: Annotated[AuditSettings, Depends(get_settings)],
) -> dict[str, Any]:
    """Every logged disclosure about one child, found by the child's keyed pseudonyms.

    Entries are searched under every key version that can stand for this child alone
    (`pseudonym.lookup_keys`): v3 under each secret rotated in, v2 always, and v1 for
    entries logged before v2 unless v1 folded the names to letters other children share (a
    name without Latin letters), when the v1 key would return other children's entries.
    `versions_searched` says which.
    """
    secrets = settings.child_keys()
    keys = lookup_keys(secrets,
                       given_name=body.given_name, family_name=body.family_name,
                       date_of_birth=body.date_of_birth)
    key = keys[secrets.current_version]
    upto = await record_access(deps, auditor, action="audit.subject_access", channel="api",
                               purpose="subject access request", child_key=key)
    async with deps.engine.connect() as conn:
        found, more = await list_events(conn, EventFilter(child_keys=tuple(keys.values())),
                                        upto=upto, limit=_SUBJECT_ACCESS_LIMIT)
    return {"child_key": key, "child_keys": keys, "versions_searched": list(keys),
            "events": found, "truncated": more is not None}
