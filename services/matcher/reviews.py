"""The local-authority review queue: list, open and resolve, each read of child data audited.

Who sees a review: officers of the LA that owns it (`la_code`) and, while a handover is
offered (services/matcher/handovers.py), officers of the LA it is offered to. Only the owner
resolves, and only to one of the review's candidates or to an outcome: the answer is decided
from the review alone, never from a roll, so it cannot tell anyone who is on which roll.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import topics
from schemas.disclosures import Channel
from schemas.envelope import EventPayload, wrap
from schemas.incidents import ChildReport, disclosed_child, disclosed_incident
from schemas.matching import ChildMatched, ChildUnmatched, IncidentFacts, SchoolMatch, versioned
from services.common.db import UnitOfWork
from services.common.disclosure import record_disclosure
from services.common.local_time import LONDON
from services.common.outbox import add_to_outbox
from services.common.paging import DEFAULT_LIMIT, cut, decode_cursor, instant, optional
from services.common.problems import Problem
from services.common.pseudonym import Secrets, child_key
from services.common.sealing import sealing_of
from services.common.security import Principal
from services.matcher.content import opened_review, sealed_review
from services.matcher.deadlines import next_school_day_start
from services.matcher.decisions import SOURCE
from services.matcher.models import match_decisions, pupils, reviews, schools
from services.matcher.registry_models import field_problem
from services.matcher.roll import upn_is

Outcome = Literal["not_on_roll", "not_school_age", "home_educated"]
# What an officer matching a child needs whatever the force's profile says: the evidence the
# review is about. What the child said, and the summary, follow the profile.
MATCHING_EVIDENCE = ("gender", "address", "upn", "school_hint")
INCIDENT_EVIDENCE = ("occurred_at",)  # the incident's day decides who was on roll
PURPOSE = "match review"


@dataclass(frozen=True)
class ReviewDeps:
    """What a review use case needs: a unit of work, the time, where the outbox publishes,
    and the secret child keys are made with."""

    uow: UnitOfWork
    now: datetime
    topic_prefix: str
    key_secret: Secrets
    channel: Channel = "api"  # how the officer reached the review: the API or the portal


def owns(principal: Principal, row: Any) -> bool:
    """Whether the caller is an officer of the LA that owns the review."""
    return row.la_code is not None and row.la_code in principal.la_codes


def offered_to(principal: Principal, row: Any) -> bool:
    """Whether the review is offered to one of the caller's LAs."""
    return row.handover_to is not None and row.handover_to in principal.la_codes


def deadline_of(row: Any) -> datetime:
    """The review's deadline (reviews queued before deadlines were stored: the default
    calendar's next school-day start after it was queued)."""
    deadline: datetime | None = row.deadline_at or next_school_day_start(row.created_at)
    assert deadline is not None
    return deadline


def minutes_left(deadline: datetime, now: datetime) -> int:
    """Whole minutes until the deadline; negative once it has passed."""
    return math.floor((deadline - now).total_seconds() / 60)


async def list_reviews(*, principal: Principal, uow: UnitOfWork, now: datetime,
                       limit: int = DEFAULT_LIMIT, cursor: str | None = None
                       ) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the open reviews of the officer's LAs, and those offered to them, most
    urgent first (then oldest, then by id: a stable order), and the next page's cursor; no
    child data."""
    r = reviews.c
    query = (select(r.review_id, r.incident_id, r.la_code, r.created_at, r.reason,
                    r.candidates, r.deadline_at, r.handover_to)
             .where(r.status == "open", or_(r.la_code.in_(principal.la_codes),
                                            r.handover_to.in_(principal.la_codes)))
             .order_by(r.deadline_at.asc().nulls_first(), r.created_at, r.review_id)
             .limit(limit + 1))
    if cursor is not None:
        query = query.where(_after(*decode_cursor(cursor, optional(instant), instant,
                                                  uuid.UUID)))
    async with uow:
        rows, next_cursor = cut((await uow.conn.execute(query)).all(), limit, _queue_key)
        rows = [opened_review(uow.conn, r) for r in rows]  # the candidates counted, not shown
    listed = []
    for row in rows:
        deadline = deadline_of(row)
        left = minutes_left(deadline, now)
        listed.append({
            "review_id": str(row.review_id), "incident_id": str(row.incident_id),
            "la_code": row.la_code, "created_at": row.created_at.isoformat(),
            "reason": row.reason, "candidates": len(row.candidates),
            "deadline_at": deadline.isoformat(), "minutes_left": left,
            "handover_to": row.handover_to,
            # the names before deadlines were per review, kept for existing readers
            "school_day_starts_at": deadline.isoformat(),
            "minutes_until_school_day": max(0, left),
        })
    return listed, next_cursor


def _queue_key(row: Any) -> tuple[str | None, str, str]:
    return (row.deadline_at.isoformat() if row.deadline_at else None,
            row.created_at.isoformat(), str(row.review_id))


def _after(deadline: datetime | None, created: datetime, review_id: uuid.UUID
           ) -> ColumnElement[bool]:
    """The rows after this one in the queue's order (deadline, nulls first; created; id)."""
    r = reviews.c
    rest = tuple_(r.created_at, r.review_id) > tuple_(created, review_id)
    if deadline is None:
        return or_(r.deadline_at.is_not(None), and_(r.deadline_at.is_(None), rest))
    return and_(r.deadline_at.is_not(None), or_(
        r.deadline_at > deadline, and_(r.deadline_at == deadline, rest)))


async def open_review(review_id: uuid.UUID, *, principal: Principal, deps: ReviewDeps
                      ) -> dict[str, Any]:
    """A review's child and candidates: the child's disclosure and one per candidate pupil
    shown are staged first, or nothing is shown."""
    async with deps.uow as uow:
        row = await load_review(uow.conn, review_id, principal)
        la_code = row.la_code if owns(principal, row) else row.handover_to
        await stage_child_disclosure(uow.conn, row, principal, deps, action="review.view",
                                     purpose=PURPOSE, la_code=la_code)
        for candidate in row.candidates:
            await record_disclosure(
                uow.conn, source=f"{deps.topic_prefix}{SOURCE}", topic_prefix=deps.topic_prefix,
                principal=principal, action="review.candidate.view", channel=deps.channel,
                purpose=PURPOSE, at=deps.now, child_key=child_key(
                    deps.key_secret, given_name=candidate["given_name"],
                    family_name=candidate["family_name"],
                    date_of_birth=date.fromisoformat(candidate["date_of_birth"])),
                school_urn=candidate["urn"], la_code=la_code, review_id=review_id,
                incident_id=row.incident_id)
        await uow.commit()
    return review_view(row, deps.now)


def review_view(row: Any, now: datetime) -> dict[str, Any]:
    """What an officer sees of a review: the child as the force's profile and the matching
    evidence allow, the candidates side by side with the fields that agreed, the deadline."""
    fields = row.incident.get("disclosure_fields", [])
    deadline = deadline_of(row)
    resolution = row.resolution or {}
    offer = None if row.handover_to is None else {
        "to_la": row.handover_to, "offered_by": row.handover_by,
        "offered_at": row.handover_at.isoformat(), "reason": resolution.get("handover_reason")}
    return {
        "review_id": str(row.review_id), "status": row.status, "la_code": row.la_code,
        "reason": row.reason, "created_at": row.created_at.isoformat(),
        "deadline_at": deadline.isoformat(), "minutes_left": minutes_left(deadline, now),
        "handover_to": row.handover_to, "handover": offer,
        "handovers": resolution.get("handovers", []),
        "child": disclosed_child(row.child, fields, also=MATCHING_EVIDENCE),
        "incident": disclosed_incident(row.incident, fields, also=INCIDENT_EVIDENCE),
        "candidates": row.candidates,
    }


def chosen_candidate(candidates: Sequence[Mapping[str, Any]], *, urn: str, upn: str | None
                     ) -> Mapping[str, Any]:
    """The candidate a resolution names; a 422 naming the field otherwise. Decided from the
    review's own candidates alone."""
    at_school = [c for c in candidates if c.get("urn") == urn]
    if not at_school:
        raise field_problem("urn", "must be one of this review's candidate schools")
    if upn is not None:
        for candidate in at_school:
            if (candidate.get("upn") or "").upper() == upn:
                return candidate
        raise field_problem("upn", "must be the UPN of this review's candidate at that school")
    if len({c.get("upn") or "" for c in at_school}) > 1:
        raise field_problem("upn", "required: this review has several candidates at that school")
    return at_school[0]


async def resolve_review(review_id: uuid.UUID, *, urn: str | None, upn: str | None,
                         outcome: Outcome | None, reason: str | None, principal: Principal,
                         deps: ReviewDeps) -> dict[str, Any]:
    """Send the child down the matched path to a candidate's school, or to the LA's
    safeguarding contact; the resolution is audited."""
    async with deps.uow as uow:
        row = await load_review(uow.conn, review_id, principal, lock=True)
        if not owns(principal, row):
            raise Problem(403, "Forbidden", "Only the review's own local authority may resolve "
                                            "it: accept the handover first.")
        if row.status != "open":
            raise Problem(409, "Conflict", f"This review is already {row.status}.")
        child = ChildReport.model_validate(row.child)
        facts = IncidentFacts.model_validate(row.incident)
        payload: EventPayload
        if urn is not None:
            chosen = chosen_candidate(row.candidates, urn=urn, upn=upn)
            matches = await _schools_told(uow.conn, chosen, fallback_la=row.la_code,
                                          on=facts.occurred_at)
            payload = ChildMatched(child_id=row.child_id, child_index=row.child_index,
                                   incident=facts, child=child, schools=matches,
                                   decided_by="review", matched_at=deps.now,
                                   version=row.version)
            status, urns = "matched", [m.urn for m in matches]
        else:
            assert outcome is not None
            payload = ChildUnmatched(child_id=row.child_id, child_index=row.child_index,
                                     incident=facts, child=child, la_code=row.la_code,
                                     reason=outcome, decided_by="review", decided_at=deps.now,
                                     version=row.version)
            status, urns = "unmatched", []
        kept = {k: v for k, v in (row.resolution or {}).items() if k == "handovers"}
        await uow.conn.execute(update(reviews).where(reviews.c.review_id == review_id).values(
            status="resolved", resolved_at=deps.now, resolved_by=principal.subject[:64],
            handover_to=None, handover_by=None, handover_at=None,
            **sealed_review(uow.conn, review_id, at=deps.now, resolution=kept | {
                "status": status, "urns": urns, "outcome": outcome, "reason": reason})))
        await uow.conn.execute(update(match_decisions).where(
            match_decisions.c.child_id == row.child_id).values(
            status=status, urns=urns, reason=f"review:{outcome or 'matched'}",
            decided_at=deps.now))
        await stage_child_disclosure(
            uow.conn, row, principal, deps, action="review.resolve", la_code=row.la_code,
            purpose=f"{PURPOSE} resolved: {outcome or 'matched'}",
            school_urn=urn)
        event_id = uuid.uuid5(row.child_id, versioned("reviewed", row.version))
        await add_to_outbox(uow.conn, source=f"{deps.topic_prefix}{SOURCE}",
                            topic=f"{deps.topic_prefix}{topics.MATCHES}",
                            key=str(row.incident_id),
                            envelope=wrap(payload, event_id=event_id, occurred_at=deps.now,
                                          correlation_id=row.incident_id))
        await uow.commit()
    named = [u for u in urns if u in {c.get("urn") for c in row.candidates}]
    return {"review_id": str(review_id), "status": status, "urns": named,
            "other_schools": len(urns) - len(named)}


async def close_open_reviews(conn: AsyncConnection, incident_id: uuid.UUID,
                             indexes: Sequence[int], *, status: str, at: datetime,
                             before_version: int | None = None) -> None:
    """Close the open reviews of these children of an incident (withdrawn, or superseded by
    a correction: only those about an earlier version than `before_version`)."""
    if not indexes:
        return
    about = [reviews.c.incident_id == incident_id, reviews.c.child_index.in_(indexes),
             reviews.c.status == "open"]
    if before_version is not None:
        about.append(reviews.c.version < before_version)
    await conn.execute(update(reviews).where(*about).values(
        status=status, resolved_at=at, handover_to=None, handover_by=None, handover_at=None))


async def carry_open_reviews(conn: AsyncConnection, incident_id: uuid.UUID,
                             untouched: Sequence[int], *, facts: IncidentFacts,
                             version: int, at: datetime) -> None:
    """The open reviews of children a correction left as they were now belong to its version
    and show its facts, so resolving one never sends the notifier an older incident."""
    carried = (await conn.execute(update(reviews).where(
        reviews.c.incident_id == incident_id, reviews.c.status == "open",
        reviews.c.child_index.in_(untouched), reviews.c.version < version,
    ).values(version=version).returning(reviews.c.review_id))).scalars().all()
    for review_id in carried:  # each sealed for its own row
        await conn.execute(update(reviews).where(reviews.c.review_id == review_id).values(
            **sealed_review(conn, review_id, at=at, incident=facts.model_dump(mode="json"))))


async def load_review(conn: AsyncConnection, review_id: uuid.UUID, principal: Principal,
                      *, lock: bool = False) -> Any:
    """The review if the caller may see it (404 otherwise, hiding that it exists), its
    content opened for the caller to record the disclosure before showing any of it."""
    query = select(reviews).where(reviews.c.review_id == review_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None or not (owns(principal, row) or offered_to(principal, row)):
        raise Problem(404, "Not found", "No such review for your local authority.")
    if not row.child:
        raise Problem(410, "Gone", "This review's content was erased under the retention policy.")
    return opened_review(conn, row)


async def stage_child_disclosure(conn: AsyncConnection, row: Any, principal: Principal,
                                 deps: ReviewDeps, *, action: str, purpose: str,
                                 la_code: str | None, school_urn: str | None = None) -> None:
    """Record that the review's reported child was shown (or sent on) by `principal`."""
    child = ChildReport.model_validate(row.child)
    await record_disclosure(
        conn, source=f"{deps.topic_prefix}{SOURCE}", topic_prefix=deps.topic_prefix,
        principal=principal, action=action, channel=deps.channel, purpose=purpose,
        at=deps.now,
        child_key=child_key(deps.key_secret, given_name=child.given_name,
                            family_name=child.family_name, date_of_birth=child.date_of_birth),
        school_urn=school_urn, la_code=la_code, review_id=row.review_id,
        incident_id=row.incident_id)


async def _schools_told(conn: AsyncConnection, chosen: Mapping[str, Any], *,
                        fallback_la: str | None, on: datetime) -> list[SchoolMatch]:
    """The chosen candidate's school and, for a dual registration, every other open school
    with that UPN on roll on the incident's day (told too; never named in the answer)."""
    urn, upn = str(chosen["urn"]), str(chosen.get("upn") or "")
    la_code = (await conn.execute(select(schools.c.la_code).where(schools.c.urn == urn))
               ).scalar_one_or_none() or fallback_la or ""
    told = [SchoolMatch(urn=urn, upn=upn or None, la_code=la_code,
                        score=float(chosen.get("score") or 0.0))]
    if not upn:
        return told
    day = on.astimezone(LONDON).date()
    others = await conn.execute(
        select(pupils.c.urn, schools.c.la_code)
        .join(schools, schools.c.urn == pupils.c.urn)
        .where(upn_is(sealing_of(conn), upn), pupils.c.urn != urn, schools.c.status != "closed",
               pupils.c.on_roll_from.is_(None) | (pupils.c.on_roll_from <= day),
               pupils.c.on_roll_to.is_(None) | (pupils.c.on_roll_to >= day))
        .order_by(pupils.c.urn))
    for r in others:
        if r.urn != told[-1].urn:  # a roll listing the UPN twice still means one school
            told.append(SchoolMatch(urn=r.urn, upn=upn, la_code=r.la_code, score=0.0))
    return told
