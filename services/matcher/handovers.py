"""Cross-LA handover of a review: the owning LA offers it, the other LA accepts or declines.

While offered, the review shows to both LAs' officers (opening it is audited as any review
view is); the offer itself is audited (`review.handover`), since it shows the child to
another LA. On acceptance the review is the other LA's, and `ChildNeedsReview` goes out again
with the new LA, so the review alert reaches the desk that now owns it.

The offer's reason and the history of answers live in the review's `resolution` document
(`handover_reason`, `handovers`): the table has no column of their own, and the retention
purge erases them with the rest of the content.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import topics
from schemas.envelope import wrap
from schemas.matching import ChildNeedsReview
from services.common.outbox import add_to_outbox
from services.common.problems import Problem
from services.common.security import Principal
from services.matcher.content import sealed_review
from services.matcher.decisions import SOURCE
from services.matcher.models import local_authorities, reviews
from services.matcher.readiness import roles_of
from services.matcher.registry_models import field_problem
from services.matcher.reviews import (
    PURPOSE,
    ReviewDeps,
    deadline_of,
    load_review,
    offered_to,
    owns,
    stage_child_disclosure,
)


async def offer_handover(review_id: uuid.UUID, *, to_la: str, reason: str,
                         principal: Principal, deps: ReviewDeps) -> dict[str, Any]:
    """Offer the review to another LA (replacing any offer not yet answered)."""
    async with deps.uow as uow:
        row = await _open_review(uow.conn, review_id, principal)
        if not owns(principal, row):
            raise Problem(403, "Forbidden",
                          "Only the review's own local authority may hand it over.")
        if to_la == row.la_code:
            raise field_problem("to_la", "must be another local authority")
        target = (await uow.conn.execute(select(local_authorities.c.contacts).where(
            local_authorities.c.la_code == to_la))).first()
        if target is None:
            raise field_problem("to_la", "no such local authority")
        if "safeguarding" not in roles_of(target.contacts):
            # its review alert would reach nobody: the child would fall between the two LAs
            raise field_problem("to_la", "has no safeguarding contact to take the review")
        resolution = {k: v for k, v in (row.resolution or {}).items() if k == "handovers"}
        await uow.conn.execute(update(reviews).where(reviews.c.review_id == review_id).values(
            handover_to=to_la, handover_by=principal.subject[:64], handover_at=deps.now,
            **sealed_review(uow.conn, review_id, at=deps.now,
                            resolution=resolution | {"handover_reason": reason})))
        await stage_child_disclosure(uow.conn, row, principal, deps, action="review.handover",
                                     purpose=f"{PURPOSE} offered to LA {to_la}", la_code=to_la)
        await uow.commit()
    return {"review_id": str(review_id), "la_code": row.la_code, "handover_to": to_la,
            "handover_at": deps.now.isoformat()}


async def accept_handover(review_id: uuid.UUID, *, principal: Principal, deps: ReviewDeps
                          ) -> dict[str, Any]:
    """Take over a review offered to the caller's LA; its alert is sent again, to that LA."""
    async with deps.uow as uow:
        row = await _offered(uow.conn, review_id, principal)
        old, new = row.la_code, row.handover_to
        await _answer(uow.conn, row, principal, deps, outcome="accepted", la_code=new)
        payload = ChildNeedsReview(
            child_id=row.child_id, child_index=row.child_index, incident_id=row.incident_id,
            review_id=row.review_id, la_code=new, candidates=len(row.candidates),
            queued_at=deps.now, deadline_at=deadline_of(row), handed_over_from=old,
            force_code=row.incident["force_code"], version=row.version)
        event_id = uuid.uuid5(row.review_id, f"handover:{old}:{new}:{row.handover_at.isoformat()}")
        await add_to_outbox(uow.conn, source=f"{deps.topic_prefix}{SOURCE}",
                            topic=f"{deps.topic_prefix}{topics.REVIEWS}",
                            key=str(row.incident_id),
                            envelope=wrap(payload, event_id=event_id, occurred_at=deps.now,
                                          correlation_id=row.incident_id))
        await uow.commit()
    return {"review_id": str(review_id), "la_code": new, "handed_over_from": old}


async def decline_handover(review_id: uuid.UUID, *, principal: Principal, deps: ReviewDeps
                           ) -> dict[str, Any]:
    """Refuse a review offered to the caller's LA: it stays with the LA that offered it."""
    async with deps.uow as uow:
        row = await _offered(uow.conn, review_id, principal)
        await _answer(uow.conn, row, principal, deps, outcome="declined", la_code=row.la_code)
        await uow.commit()
    return {"review_id": str(review_id), "la_code": row.la_code, "handover_to": None}


async def _open_review(conn: AsyncConnection, review_id: uuid.UUID, principal: Principal) -> Any:
    row = await load_review(conn, review_id, principal, lock=True)
    if row.status != "open":
        raise Problem(409, "Conflict", f"This review is already {row.status}.")
    return row


async def _offered(conn: AsyncConnection, review_id: uuid.UUID, principal: Principal) -> Any:
    row = await _open_review(conn, review_id, principal)
    if not offered_to(principal, row):
        raise Problem(409, "Conflict",
                      "No handover of this review is offered to your local authority.")
    return row


async def _answer(conn: AsyncConnection, row: Any, principal: Principal, deps: ReviewDeps,
                  *, outcome: str, la_code: str) -> None:
    """Close the offer with the answer, kept in the review's history."""
    resolution = dict(row.resolution or {})
    answered = {"from_la": row.la_code, "to_la": row.handover_to, "offered_by": row.handover_by,
                "offered_at": row.handover_at.isoformat(),
                "reason": resolution.pop("handover_reason", None), "outcome": outcome,
                "answered_by": principal.subject, "answered_at": deps.now.isoformat()}
    resolution["handovers"] = [*resolution.get("handovers", []), answered]
    await conn.execute(update(reviews).where(reviews.c.review_id == row.review_id).values(
        la_code=la_code, handover_to=None, handover_by=None, handover_at=None,
        **sealed_review(conn, row.review_id, at=deps.now, resolution=resolution)))
