"""Review-queue routes for local-authority officers (own LA only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.auth_api import require_scope
from services.common.problems import problem_responses
from services.common.security import Principal
from services.matcher import reviews
from services.matcher.context import MatcherCtx
from services.matcher.reviews import Outcome

router = APIRouter(tags=["reviews"])
Reader = Annotated[Principal, Depends(require_scope("reviews:read"))]
Resolver = Annotated[Principal, Depends(require_scope("reviews:resolve"))]
Ctx = MatcherCtx
_ERRORS = problem_responses(401, 403, 404, 409)


class ResolveIn(BaseModel):
    """Either the roll the child is on (`urn`, `upn`), or why the child is on none."""

    model_config = ConfigDict(extra="forbid")
    urn: str | None = Field(default=None, pattern=r"^[0-9]{6,7}$")
    upn: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{13}$")
    outcome: Outcome | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ResolveIn:
        if (self.urn is None) == (self.outcome is None):
            raise ValueError("give either urn (and upn) or outcome")
        return self


@router.get("/v1/reviews", responses=_ERRORS)
async def list_reviews(principal: Reader, ctx: Ctx) -> list[dict[str, Any]]:
    """Open reviews for the officer's local authorities, with time left before school."""
    return await reviews.list_reviews(principal=principal, uow=ctx.uow(), now=ctx.clock())


@router.get("/v1/reviews/{review_id}", responses=_ERRORS)
async def get_review(review_id: uuid.UUID, principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """The child and the candidate pupils: an audited disclosure."""
    return await reviews.open_review(
        review_id, principal=principal, uow=ctx.uow(), now=ctx.clock(),
        topic_prefix=ctx.settings.topic_prefix,
        key_secret=ctx.settings.child_key_secret.get_secret_value(),
    )


@router.post("/v1/reviews/{review_id}/resolve", responses=_ERRORS)
async def resolve_review(
    review_id: uuid.UUID, body: ResolveIn, principal: Resolver, ctx: Ctx
) -> dict[str, Any]:
    """Resolve to a school roll, or to the LA safeguarding contact."""
    result = await reviews.resolve_review(
        review_id, urn=body.urn, upn=body.upn.upper() if body.upn else None,
        outcome=body.outcome, principal=principal, uow=ctx.uow(), now=ctx.clock(),
        topic_prefix=ctx.settings.topic_prefix,
    )
    ctx.wake_relay()
    return result
