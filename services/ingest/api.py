"""Ingest routes: validate, call a use case, answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from schemas.incidents import ForceCode, IncidentIn, LaCode, WithdrawIn
from services.common.auth_api import require_scope
from services.common.context import context_in
from services.common.lean_route import declared, json_body, scoped_principal
from services.common.problems import documented_rules, problem_responses
from services.common.security import Principal
from services.ingest import corrections, readiness, service
from services.ingest.context import IngestContext, IngestCtx

router = APIRouter(tags=["incidents"])
Police = Annotated[Principal, Depends(require_scope("incidents:write"))]
Admin = Annotated[Principal, Depends(require_scope("admin"))]
Ctx = IngestCtx
_ERRORS = problem_responses(401, 403, 404, 409)
# the links a client (and schemathesis's stateful run) follows: report → status → withdraw
_FOLLOW_INCIDENT = {"links": {
    "GetIncident": {"operationId": "get_incident",
                    "parameters": {"incident_id": "$response.body#/incident_id"}},
    "WithdrawIncident": {"operationId": "withdraw_incident",
                         "parameters": {"incident_id": "$response.body#/incident_id"}},
}}
_INCIDENT_RULES = documented_rules(
    "every child is under 18 on occurred_at's date", "no child is born after occurred_at",
    "occurred_at is not in the future (five minutes' clock skew allowed)")
_CREATED: dict[int | str, dict[str, Any]] = {
    201: {"description": "Created", "content": {"application/json": {"schema": {}}}}}


class IncidentAccepted(BaseModel):
    """The answer to a report or a withdrawal."""

    incident_id: uuid.UUID
    status: str


class CorrectionAccepted(IncidentAccepted):
    """The answer to a correction: the incident's version now."""

    version: int


class ChildWithdrawnAnswer(IncidentAccepted):
    """The answer to a child's withdrawal."""

    child_index: int


def _no_fields() -> dict[str, list[str]]:
    return {"fields": []}


class ForceIn(BaseModel):
    """A force, what its disclosure profile lets schools see, and its default LA."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    disclosure_profile: dict[str, list[str]] = Field(default_factory=_no_fields)
    # where a child whose LA cannot be told from the report goes; omitted: keep the stored
    # one. Until a force has one, its incidents are refused (409 "Force not ready").
    default_la_code: LaCode | None = None


# the hot route reads its own request (services/common/lean_route.py); what it declares is
# what `body: IncidentIn, principal: Police` would
@router.post("/v1/incidents", status_code=202, response_model=IncidentAccepted,
             operation_id="report_incident", openapi_extra=_INCIDENT_RULES | declared(IncidentIn),
             responses={200: {"model": IncidentAccepted, **_FOLLOW_INCIDENT},
                        202: _FOLLOW_INCIDENT, **_ERRORS})
async def post_incident(request: Request) -> JSONResponse:
    """Report an incident: 202 once it is durably on Kafka, 200 for an identical retry."""
    ctx = context_in(request, IngestContext)
    principal = await scoped_principal(request, ctx, "incidents:write")
    body = await json_body(request, IncidentIn)
    outcome = await service.accept_incident(
        body, principal=principal, batcher=ctx.batcher, now=ctx.clock())
    if outcome.created:
        ctx.accepted.labels(body.force_code).inc()
    return _answer(outcome)


@router.post("/v1/incidents/{incident_id}/withdraw", status_code=202,
             response_model=IncidentAccepted, operation_id="withdraw_incident",
             responses={200: {"model": IncidentAccepted}, **_ERRORS})
async def withdraw(
    incident_id: uuid.UUID, body: WithdrawIn, principal: Police, ctx: Ctx
) -> JSONResponse:
    """Retract an incident reported in error."""
    outcome = await service.withdraw_incident(
        incident_id, body, principal=principal, uow=ctx.uow(),
        publisher=ctx.publisher, topic_prefix=ctx.settings.topic_prefix,
        now=ctx.clock(),
    )
    return _answer(outcome)


@router.put("/v1/incidents/{incident_id}", status_code=202, response_model=CorrectionAccepted,
            openapi_extra=_INCIDENT_RULES, responses={
                200: {"model": CorrectionAccepted}, **problem_responses(401, 403, 404, 409, 422)})
async def put_incident(
    incident_id: uuid.UUID, body: IncidentIn, principal: Police, ctx: Ctx
) -> JSONResponse:
    """Correct an incident with its whole corrected body: 202 with the new version once it is
    durably on Kafka, 200 with the current version when the body is that version's."""
    done = await corrections.correct_incident(
        incident_id, body, principal=principal, uow=ctx.uow(), publisher=ctx.publisher,
        topic_prefix=ctx.settings.topic_prefix, now=ctx.clock())
    answer = {"incident_id": str(incident_id), "status": "accepted", "version": done.version}
    return JSONResponse(answer, status_code=202 if done.created else 200)


@router.post("/v1/incidents/{incident_id}/children/{child_index}/withdraw", status_code=202,
             response_model=ChildWithdrawnAnswer,
             responses={200: {"model": ChildWithdrawnAnswer}, **_ERRORS})
async def withdraw_child(
    incident_id: uuid.UUID, child_index: Annotated[int, Path(ge=0, le=32767)],
    body: WithdrawIn, principal: Police, ctx: Ctx,
) -> JSONResponse:
    """Withdraw one child of an incident (by its position in the report)."""
    created = await corrections.withdraw_child(
        incident_id, child_index, body, principal=principal, uow=ctx.uow(),
        publisher=ctx.publisher, topic_prefix=ctx.settings.topic_prefix, now=ctx.clock())
    answer = {"incident_id": str(incident_id), "status": "withdrawn", "child_index": child_index}
    return JSONResponse(answer, status_code=202 if created else 200)


@router.get("/v1/incidents/{incident_id}", responses=_ERRORS, operation_id="get_incident")
async def get_incident(incident_id: uuid.UUID, principal: Police, ctx: Ctx) -> dict[str, Any]:
    """An incident's status (no child data) for the force that reported it."""
    return await service.get_incident_status(incident_id, principal=principal, uow=ctx.uow())


@router.put("/v1/forces/{force_code}", responses=_CREATED | _ERRORS)
async def put_force(
    force_code: Annotated[str, Path(pattern=ForceCode.__metadata__[0].pattern)],
    body: ForceIn, principal: Admin, ctx: Ctx,
) -> JSONResponse:
    """Create or update a force, its disclosure profile and its default LA."""
    created = await service.put_force(
        force_code, name=body.name, fields=body.disclosure_profile.get("fields", []),
        default_la_code=body.default_la_code, uow=ctx.uow(), now=ctx.clock(),
    )
    view = await service.get_force(force_code, uow=ctx.uow())
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("/v1/forces/{force_code}", responses=_ERRORS)
async def get_force(force_code: str, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """A force, its disclosure profile and its default LA."""
    return await service.get_force(force_code, uow=ctx.uow())


@router.get("/v1/admin/readiness", tags=["admin"], responses=problem_responses(401, 403))
async def get_readiness(principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Forces whose configuration would leave a child with nobody told (the police clients'
    forces are checked by `daybreak doctor`, which can read the identity service's table)."""
    return await readiness.readiness_report(ctx.uow(), now=ctx.clock())


def _answer(outcome: service.Outcome) -> JSONResponse:
    body = {"incident_id": str(outcome.incident_id), "status": outcome.status}
    return JSONResponse(body, status_code=202 if outcome.created else 200)
