"""Registry routes (admin only): local authorities, schools, rosters, calendars, readiness."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.common.auth_api import require_scope
from services.common.context import AppContext, get_ctx
from services.common.doctor import ReadinessProblem
from services.common.problems import Problem, documented_rules, problem_responses
from services.common.safe_http import refuse_unsafe_registration
from services.common.security import Principal
from services.matcher import local_authorities, registry, term_dates
from services.matcher.readiness import default_la_problems, registry_problems
from services.matcher.registry_models import (
    LA_CODE_PATTERN,
    URN_PATTERN,
    LocalAuthorityIn,
    SchoolIn,
)

router = APIRouter(tags=["registry"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]
Ctx = Annotated[AppContext, Depends(get_ctx)]
Urn = Annotated[str, Path(pattern=URN_PATTERN)]
LaCode = Annotated[str, Path(pattern=LA_CODE_PATTERN)]
_ERRORS = problem_responses(401, 403, 404, 415)
_CREATED: dict[int | str, dict[str, Any]] = {
    201: {"description": "Created", "content": {"application/json": {"schema": {}}}}}
ICS = "text/calendar"
_FILE_RULES = documented_rules("the file is read row by row (or, for iCalendar, event by "
                               "event): any problem refuses it whole, each one named")
# a file's bytes (UTF-8): generated clients send it as it is, with the declared media type
_FILE = {"type": "string", "format": "binary"}
# a roster: Daybreak's CSV, or the school MIS's Common Transfer File (services/matcher/ctf.py)
ROSTER_TYPES = ("text/csv", "application/xml", "text/xml")
_ROSTER_BODY = {"requestBody": {"required": True, "content": {
    media_type: {"schema": _FILE} for media_type in ROSTER_TYPES}}} | _FILE_RULES
_CALENDAR_BODY = {"requestBody": {"required": True, "content": {
    media_type: {"schema": _FILE} for media_type in ("text/csv", ICS)}}
    } | _FILE_RULES


class RosterImported(BaseModel):
    """The answer to a roster upload."""

    urn: str
    rows: int
    replaced: int
    skipped: int = 0  # pupils of a CTF not on this school's roll (guests, others)


@router.put("/v1/local-authorities/{la_code}", responses=_CREATED | _ERRORS,
            openapi_extra=documented_rules(
                "attendance_prompt_at is before attendance_la_at (given or stored)"))
async def put_local_authority(
    la_code: LaCode, body: LocalAuthorityIn, principal: Admin, ctx: Ctx
) -> JSONResponse:
    """Create (201) or replace (200) a local authority, its contacts and settings."""
    created = await local_authorities.put_local_authority(
        la_code.upper(), body=body, uow=ctx.uow(), now=ctx.clock(),
        topic_prefix=ctx.settings.topic_prefix,
    )
    view = await local_authorities.get_local_authority(la_code.upper(), uow=ctx.uow(),
                                                      now=ctx.clock())
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("/v1/local-authorities/{la_code}", responses=_ERRORS)
async def get_local_authority(la_code: LaCode, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """A local authority, its contacts and settings, and whether it is ready."""
    return await local_authorities.get_local_authority(la_code.upper(), uow=ctx.uow(),
                                                        now=ctx.clock())


@router.get("/v1/admin/readiness", responses=problem_responses(401, 403))
async def get_readiness(request: Request, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Every configuration that would leave a reported child with nobody told: the registry's,
    the forces' (ingest's own list, asked with the admin's own token) and each force's default
    LA against the registry. The list `daybreak doctor` prints, but for the police clients'
    forces, which only the identity service may read (the doctor checks those too)."""
    forces, defaults = await _forces_readiness(ctx, request.headers.get("authorization", ""))
    async with ctx.uow() as uow:
        problems = await registry_problems(uow.conn, now=ctx.clock())
        problems += await default_la_problems(uow.conn, defaults)
    # forces, then the registry's own order (LAs, then schools), then anything unchecked
    problems = sorted([*forces, *problems], key=lambda p: _RANK.get(p.subject.split(":")[0], 9))
    return {"ready": not problems, "problems": [p.as_dict() for p in problems]}


_RANK = {"force": 0, "la": 1, "school": 2}


async def _forces_readiness(ctx: AppContext, authorization: str
                            ) -> tuple[list[ReadinessProblem], dict[str, str]]:
    """Ingest's forces problems and default LAs; a problem of its own when ingest does not
    answer, so the list is never 'ready' with the forces unchecked."""
    try:
        answer = await ctx.ingest().get("/v1/admin/readiness",
                                        headers={"Authorization": authorization})
        answer.raise_for_status()
        body = answer.json()
        return ([ReadinessProblem(p["code"], p["subject"], p["message"])
                 for p in body["problems"]], dict(body.get("default_las", {})))
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return ([ReadinessProblem(
            "forces_unchecked", "service:ingest",
            f"ingest did not answer ({type(exc).__name__}): the forces were not checked")], {})


# school → its roll (the stateful run follows these, as a client would)
_FOLLOW_SCHOOL = {"links": {
    "ImportRoster": {"operationId": "import_roster", "parameters": {"urn": "$request.path.urn"}},
    "GetSchool": {"operationId": "get_school", "parameters": {"urn": "$request.path.urn"}},
}}


_SCHOOL_RULES = documented_rules(
    "postcode is a UK postcode", "deputy_after_minutes is at most la_after_minutes (given or "
    "stored)", "webhook.url is https (http only to loopback where the deployment allows it), "
    "names no private, loopback, link-local or metadata address, without credentials",
    "a new webhook URL needs a secret")


@router.put("/v1/schools/{urn}", openapi_extra=_SCHOOL_RULES, responses={
    200: _FOLLOW_SCHOOL, 201: _CREATED[201] | _FOLLOW_SCHOOL, **_ERRORS})
async def put_school(urn: Urn, body: SchoolIn, principal: Admin, ctx: Ctx) -> JSONResponse:
    """Create (201) or replace (200) a school's registration."""
    if body.webhook is not None:
        refuse_unsafe_registration(body.webhook.url, field="webhook.url",
                                   allow_loopback=ctx.settings.webhook_allow_loopback)
    created = await registry.put_school(urn, body=body, uow=ctx.uow(), now=ctx.clock(),
                                        topic_prefix=ctx.settings.topic_prefix)
    view = await registry.get_school(urn, uow=ctx.uow(), now=ctx.clock())
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("/v1/schools/{urn}", responses=_ERRORS, operation_id="get_school")
async def get_school(urn: Urn, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """A school's registration; the webhook secret is never returned."""
    return await registry.get_school(urn, uow=ctx.uow(), now=ctx.clock())


class CalendarImported(BaseModel):
    """The answer to a school's calendar upload: its overrides (CSV) or own term dates (.ics)."""

    urn: str
    days: int
    replaced: int


class LaCalendarImported(BaseModel):
    """The answer to an LA's term dates upload."""

    la_code: str
    days: int
    replaced: int
    schools_affected: int  # its schools without term dates of their own: they follow these


def _media_type(request: Request, what: str, *allowed: str) -> str:
    """The body's media type, one of `allowed` in UTF-8, else 415."""
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    media_type = media_type.strip().lower()
    charset = params.partition("charset=")[2].strip().strip('"').lower()
    if media_type not in allowed or charset not in ("", "utf-8", "utf8"):
        raise Problem(415, "Unsupported media type",
                      f"Send the {what} as {' or '.join(allowed)} in UTF-8.")
    return media_type


@router.put("/v1/schools/{urn}/calendar", response_model=CalendarImported, responses=_ERRORS,
            openapi_extra=_CALENDAR_BODY)
async def put_calendar(urn: Urn, request: Request, principal: Admin, ctx: Ctx
                       ) -> CalendarImported:
    """Replace the school's calendar overrides with a `urn,date,kind` CSV, or its own term
    dates (which replace its LA's for it) with an iCalendar file: all or nothing."""
    media_type = _media_type(request, "calendar", "text/csv", ICS)
    body, now, prefix = await request.body(), ctx.clock(), ctx.settings.topic_prefix
    if media_type == ICS:
        own = await term_dates.put_school_term_dates(urn, body, uow=ctx.uow(), now=now,
                                                     topic_prefix=prefix)
        return CalendarImported(urn=urn, days=own.days, replaced=own.replaced)
    result = await registry.import_calendar(urn, body, uow=ctx.uow(), now=now,
                                            topic_prefix=prefix)
    return CalendarImported(urn=urn, days=result.days, replaced=result.replaced)


@router.get("/v1/schools/{urn}/calendar", responses=_ERRORS)
async def get_calendar(urn: Urn, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """The school's effective calendar: whose term dates it follows (`school`, `la` or `none`)
    and each day that differs from Monday to Friday less bank holidays."""
    return await term_dates.get_school_calendar(urn, uow=ctx.uow())


@router.delete("/v1/schools/{urn}/calendar/term-dates", response_model=CalendarImported,
               responses=_ERRORS)
async def delete_term_dates(urn: Urn, principal: Admin, ctx: Ctx) -> CalendarImported:
    """Drop the school's own term dates: it follows its LA's again (overrides are kept)."""
    result = await term_dates.put_school_term_dates(
        urn, None, uow=ctx.uow(), now=ctx.clock(), topic_prefix=ctx.settings.topic_prefix)
    return CalendarImported(urn=urn, days=result.days, replaced=result.replaced)


@router.put("/v1/local-authorities/{la_code}/calendar", response_model=LaCalendarImported,
            responses=_ERRORS, openapi_extra=_CALENDAR_BODY)
async def put_la_calendar(la_code: LaCode, request: Request, principal: Admin, ctx: Ctx
                          ) -> LaCalendarImported:
    """Replace the LA's term dates (an iCalendar file, or a `date,kind` CSV): the calendar of
    every school of the LA without its own; all or nothing."""
    media_type = _media_type(request, "term dates", ICS, "text/csv")
    result = await term_dates.put_la_calendar(
        la_code.upper(), await request.body(), fmt="ics" if media_type == ICS else "csv",
        uow=ctx.uow(), now=ctx.clock(), topic_prefix=ctx.settings.topic_prefix)
    return LaCalendarImported(la_code=result.la_code, days=result.days,
                              replaced=result.replaced, schools_affected=result.schools_affected)


@router.get("/v1/local-authorities/{la_code}/calendar", responses=_ERRORS)
async def get_la_calendar(la_code: LaCode, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """The LA's term dates, by day, and how many of its schools follow them."""
    return await term_dates.get_la_calendar(la_code.upper(), uow=ctx.uow())


@router.post("/v1/schools/{urn}/roster", response_model=RosterImported, responses=_ERRORS,
             openapi_extra=_ROSTER_BODY, operation_id="import_roster")
async def post_roster(urn: Urn, request: Request, principal: Admin, ctx: Ctx) -> RosterImported:
    """Replace the school's roll with a roster CSV, or with the Common Transfer File its MIS
    exports (application/xml): all pupils or none."""
    media_type = _media_type(request, "roster", *ROSTER_TYPES)
    result = await registry.import_roster(
        urn, await request.body(), uow=ctx.uow(), imported_by=principal.subject,
        now=ctx.clock(), fmt="csv" if media_type == "text/csv" else "ctf",
    )
    return RosterImported(urn=urn, rows=result.rows, replaced=result.replaced,
                          skipped=result.skipped)
