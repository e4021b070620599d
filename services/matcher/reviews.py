"""The local-authority review queue: list, open (an audited disclosure), resolve."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import topics
from schemas.envelope import EventPayload, wrap
from schemas.incidents import ChildReport
from schemas.matching import ChildMatched, ChildUnmatched, IncidentFacts, SchoolMatch
from services.common.db import UnitOfWork
from services.common.disclosure import record_disclosure
from services.common.local_time import LONDON
from services.common.outbox import add_to_outbox
from services.common.problems import Problem
from services.common.pseudonym import child_key
from services.common.school_calendar import SchoolCalendar
from services.common.security import Principal
from services.matcher.decisions import SOURCE
from services.matcher.models import match_decisions, pupils, reviews, schools

DEFAULT_DAY_STARTS = time(8, 45)
Outcome = Literal["not_on_roll", "not_school_age", "home_educated"]


def next_school_day_start(now: datetime, starts: time = DEFAULT_DAY_STARTS) -> datetime:
    """When the next school day begins (default calendar), as an aware UTC datetime."""
    calendar = SchoolCalendar()
    local = now.astimezone(LONDON)
    day: date = local.date()
    while True:
        begins = datetime.combine(day, starts, tzinfo=LONDON)
        if calendar.is_school_day(day) and begins > local:
            return begins.astimezone(ZoneInfo("UTC"))
        day += timedelta(days=1)


def _visible(principal: Principal, la_code: str | None) -> bool:
    return la_code is not None and la_code in principal.la_codes


async def list_reviews(*, principal: Principal, uow: UnitOfWork, now: datetime
                       ) -> list[dict[str, Any]]:
    """Open reviews of the officer's own LAs, oldest first, with no child data."""
    async with uow:
        rows = (await uow.conn.execute(
            select(reviews.c.review_id, reviews.c.incident_id, reviews.c.la_code,
                   reviews.c.created_at, reviews.c.reason, reviews.c.candidates)
            .where(reviews.c.status == "open", reviews.c.la_code.in_(principal.la_codes))
            .order_by(reviews.c.created_at))).all()
    starts = next_school_day_start(now)
    return [{
        "review_id": str(r.review_id), "incident_id": str(r.incident_id),
        "la_code": r.la_code, "created_at": r.created_at.isoformat(), "reason": r.reason,
        "candidates": len(r.candidates), "school_day_starts_at": starts.isoformat(),
        "minutes_until_school_day": max(0, int((starts - now).total_seconds() // 60)),
    } for r in rows]


async def open_review(review_id: uuid.UUID, *, principal: Principal, uow: UnitOfWork,
                      now: datetime, topic_prefix: str, key_secret: str) -> dict[str, Any]:
    """A review's child and candidates; the disclosure is staged first, or nothing is shown."""
    async with uow:
        row = await _review(uow.conn, review_id, principal)
        child = ChildReport.model_validate(row.child)
        await record_disclosure(
            uow.conn, source=f"{topic_prefix}{SOURCE}", topic_prefix=topic_prefix,
            principal=principal,
            action="review.view", channel="api", purpose="match review", at=now,
            child_key=child_key(key_secret, given_name=child.given_name,
                                family_name=child.family_name,
                                date_of_birth=child.date_of_birth),
            la_code=row.la_code, review_id=review_id, incident_id=row.incident_id)
        await uow.commit()
    return {
        "review_id": str(review_id), "status": row.status, "la_code": row.la_code,
        "reason": row.reason, "created_at": row.created_at.isoformat(),
        "child": {k: v for k, v in row.child.items() if k != "voice_of_child"},
        "incident": {k: row.incident[k] for k in ("incident_id", "force_code", "occurred_at",
                                                 "incident_type")},
        "candidates": row.candidates,
    }


async def resolve_review(review_id: uuid.UUID, *, urn: str | None, upn: str | None,
                         outcome: Outcome | None, principal: Principal, uow: UnitOfWork,
                         now: datetime, topic_prefix: str) -> dict[str, Any]:
    """Send the child down the matched path, or to the LA safeguarding contact."""
    async with uow:
        row = await _review(uow.conn, review_id, principal, lock=True)
        if row.status != "open":
            raise Problem(409, "Conflict", f"This review is already {row.status}.")
        child = ChildReport.model_validate(row.child)
        facts = IncidentFacts.model_validate(row.incident)
        payload: EventPayload
        if urn is not None:
            matches = await _rolls(uow.conn, urn=urn, upn=upn or "", on=facts.occurred_at)
            payload = ChildMatched(child_id=row.child_id, child_index=row.child_index,
                                   incident=facts, child=child, schools=matches,
                                   decided_by="review", matched_at=now)
            status, urns = "matched", [m.urn for m in matches]
        else:
            assert outcome is not None
            payload = ChildUnmatched(child_id=row.child_id, child_index=row.child_index,
                                     incident=facts, child=child, la_code=row.la_code,
                                     reason=outcome, decided_by="review", decided_at=now)
            status, urns = "unmatched", []
        await uow.conn.execute(update(reviews).where(reviews.c.review_id == review_id).values(
            status="resolved", resolved_at=now, resolved_by=principal.subject,
            resolution={"status": status, "urns": urns, "outcome": outcome}))
        await uow.conn.execute(update(match_decisions).where(
            match_decisions.c.child_id == row.child_id).values(
            status=status, urns=urns, reason=f"review:{outcome or 'matched'}", decided_at=now))
        await add_to_outbox(uow.conn, source=f"{topic_prefix}{SOURCE}",
                            topic=f"{topic_prefix}{topics.MATCHES}",
                            key=str(row.incident_id),
                            envelope=wrap(payload, event_id=uuid.uuid5(row.child_id, "reviewed"),
                                          occurred_at=now, correlation_id=row.incident_id))
        await uow.commit()
    return {"review_id": str(review_id), "status": status, "urns": urns}


async def _review(conn: AsyncConnection, review_id: uuid.UUID, principal: Principal,
                  *, lock: bool = False) -> Any:
    query = select(reviews).where(reviews.c.review_id == review_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None or not _visible(principal, row.la_code):
        raise Problem(404, "Not found", "No such review for your local authority.")
    if not row.child:
        raise Problem(410, "Gone", "This review's content was erased under the retention policy.")
    return row


async def _rolls(conn: AsyncConnection, *, urn: str, upn: str, on: datetime) -> list[SchoolMatch]:
    """The named roll row and, for a dual registration, every other school with that UPN."""
    day = on.astimezone(LONDON).date()
    on_roll = ((pupils.c.on_roll_from.is_(None) | (pupils.c.on_roll_from <= day))
               & (pupils.c.on_roll_to.is_(None) | (pupils.c.on_roll_to >= day)))
    named = (await conn.execute(
        select(pupils.c.urn, pupils.c.upn, schools.c.la_code, schools.c.status)
        .join(schools, schools.c.urn == pupils.c.urn)
        .where(pupils.c.urn == urn, pupils.c.upn == upn, on_roll))).first()
    if named is None or named.status == "closed":
        raise Problem(422, "Invalid request body", "That pupil is not on that open school's roll.",
                      extra={"errors": [{"field": "urn", "message": "no such pupil on roll"}]})
    rows = [named]
    if upn:
        rows += (await conn.execute(
            select(pupils.c.urn, pupils.c.upn, schools.c.la_code, schools.c.status)
            .join(schools, schools.c.urn == pupils.c.urn)
            .where(pupils.c.upn == upn, pupils.c.urn != urn, schools.c.status != "closed",
                   on_roll))).all()
    return [SchoolMatch(urn=r.urn, upn=r.upn or None, la_code=r.la_code, score=0.0) for r in rows]
