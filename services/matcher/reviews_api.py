"""Review-queue routes for local-authority officers (their own LA's, and those offered to it)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.disclosures import Channel
from schemas.incidents import NOT_BLANK
from services.common.auth_api import require_scope
from services.common.paging import (
    CURSOR_RULES,
    DEFAULT_LIMIT,
    NEXT_CURSOR_HEADER,
    Cursor,
    Limit,
)
from services.common.problems import problem_responses
from services.common.security import Principal
from services.matcher import handovers, reviews
from services.matcher.context import MatcherCtx
from services.matcher.registry_models import LA_CODE_PATTERN
from services.matcher.reviews import Outcome, ReviewDeps

router = APIRouter(tags=["reviews"])
Reader = Annotated[Principal, Depends(require_scope("reviews:read"))]
Resolver = Annotated[Principal, Depends(require_scope("reviews:resolve"))]
Ctx = MatcherCtx
_ERRORS = problem_responses(401, 403, 404, 409, 410)  # 410: erased under the retention policy
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500,
                                          pattern=NOT_BLANK)]


class ResolveIn(BaseModel):
    """One of the review's candidates (`urn`, and `upn` when that school has several), or
    why the child is on no roll; an optional reason, kept with the resolution."""

    # exactly one of urn and outcome, as the validator below says
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("urn", "outcome")]})
    urn: str | None = Field(default=None, pattern=r"^[0-9]{6,7}$")
    upn: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{13}$")
    outcome: Outcome | None = None
    reason: Reason | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ResolveIn:
        if (self.urn is None) == (self.outcome is None):
            raise ValueError("give either urn (and upn) or outcome")
        return self


class HandoverIn(BaseModel):
    """The LA to offer the review to, and why."""

    model_config = ConfigDict(extra="forbid")
    to_la: Annotated[str, StringConstraints(to_upper=True, pattern=LA_CODE_PATTERN)]
    reason: Reason


def _deps(ctx: MatcherCtx, x_daybreak_channel: Annotated[str | None, Header(
        description="`portal` when the people's portal calls with the person's own token: "
                    "the audit log records the channel they used")] = None) -> ReviewDeps:
    channel: Channel = "portal" if x_daybreak_channel == "portal" else "api"
    return ReviewDeps(uow=ctx.uow(), now=ctx.clock(), topic_prefix=ctx.settings.topic_prefix,
                      key_secret=ctx.settings.child_keys(),
                      channel=channel)


Deps = Annotated[ReviewDeps, Depends(_deps)]


# the queue → a review → its resolution (the stateful run follows these, as an officer would)
_FOLLOW_QUEUE: dict[int | str, dict[str, Any]] = {200: {"links": {"OpenReview": {
    "operationId": "open_review", "parameters": {"review_id": "$response.body#/0/review_id"}}},
    "headers": {
        NEXT_CURSOR_HEADER: {"description": "the `cursor` of the next page; absent on the last",
                             "schema": {"type": "string"}},
        "Link": {"description": 'the next page\'s address, rel="next"; absent on the last',
                 "schema": {"type": "string"}}}}}
_FOLLOW_REVIEW: dict[int | str, dict[str, Any]] = {200: {"links": {"ResolveReview": {
    "operationId": "resolve_review", "parameters": {"review_id": "$request.path.review_id"}}}}}


@router.get("/v1/reviews", responses=_FOLLOW_QUEUE | problem_responses(401, 403, 422),
            openapi_extra=CURSOR_RULES)
async def list_reviews(principal: Reader, ctx: Ctx, response: Response,
                       limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
                       ) -> list[dict[str, Any]]:
    """Open reviews for the officer's local authorities, each with its deadline, most urgent
    first, `limit` at a time. The body stays a list; when more follow, the `X-Next-Cursor`
    header holds the `cursor` of the next page (and `Link` its address, rel="next")."""
    listed, next_cursor = await reviews.list_reviews(
        principal=principal, uow=ctx.uow(), now=ctx.clock(), limit=limit, cursor=cursor)
    if next_cursor is not None:
        response.headers[NEXT_CURSOR_HEADER] = next_cursor
        response.headers["Link"] = f'</v1/reviews?limit={limit}&cursor={next_cursor}>; rel="next"'
    return listed


@router.get("/v1/reviews/{review_id}", responses=_FOLLOW_REVIEW | _ERRORS,
            operation_id="open_review")
async def get_review(review_id: uuid.UUID, principal: Reader, deps: Deps) -> dict[str, Any]:
    """The child and the candidate pupils: audited disclosures, one for each."""
    return await reviews.open_review(review_id, principal=principal, deps=deps)


@router.post("/v1/reviews/{review_id}/resolve", responses=_ERRORS, operation_id="resolve_review")
async def resolve_review(
    review_id: uuid.UUID, body: ResolveIn, principal: Resolver, ctx: Ctx, deps: Deps
) -> dict[str, Any]:
    """Resolve to one of the candidates' schools, or to the LA safeguarding contact."""
    result = await reviews.resolve_review(
        review_id, urn=body.urn, upn=body.upn.upper() if body.upn else None,
        outcome=body.outcome, reason=body.reason, principal=principal, deps=deps)
    ctx.wake_relay()
    return result


@router.post("/v1/reviews/{review_id}/handover", responses=_ERRORS)
async def offer_handover(
    review_id: uuid.UUID, body: HandoverIn, principal: Resolver, ctx: Ctx, deps: Deps
) -> dict[str, Any]:
    """Offer the review to another local authority (audited: it shows them the child)."""
    result = await handovers.offer_handover(review_id, to_la=body.to_la, reason=body.reason,
                                            principal=principal, deps=deps)
    ctx.wake_relay()
    return result


@router.post("/v1/reviews/{review_id}/handover/accept", responses=_ERRORS)
async def accept_handover(review_id: uuid.UUID, principal: Resolver, ctx: Ctx, deps: Deps
                          ) -> dict[str, Any]:
    """Take over a review offered to your local authority."""
    result = await handovers.accept_handover(review_id, principal=principal, deps=deps)
    ctx.wake_relay()
    return result


@router.post("/v1/reviews/{review_id}/handover/decline", responses=_ERRORS)
async def decline_handover(review_id: uuid.UUID, principal: Resolver, deps: Deps
                           ) -> dict[str, Any]:
    """Refuse a review offered to your local authority; it stays with the LA that offered it."""
    return await handovers.decline_handover(review_id, principal=principal, deps=deps)
