"""Turning an engine decision into stored state and the event that announces it."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import topics
from schemas.envelope import Envelope, EventPayload, wrap
from schemas.incidents import ChildReport, IncidentCorrected, IncidentReceived, age_on
from schemas.matching import (
    ChildMatched,
    ChildNeedsReview,
    ChildUnmatched,
    IncidentFacts,
    SchoolMatch,
    UnmatchedReason,
    child_id_for,
    facts_of,
    versioned,
)
from services.common.local_time import LONDON
from services.common.outbox import add_all_to_outbox
from services.matcher.content import sealed_review
from services.matcher.deadlines import review_deadline
from services.matcher.index import Registry
from services.matcher.names import postcode_outward
from services.matcher.records import Candidate, Decision
from services.matcher.records import ChildReport as EngineChild

SOURCE = "matcher"
YOUNGEST_ON_A_ROLL = 4
# a report as first received, or a later version of it (a correction)
Reported = IncidentReceived | IncidentCorrected


def engine_child(child: ChildReport, ref: str, area_urns: frozenset[str] = frozenset()
                 ) -> EngineChild:
    """The engine's view of a reported child; `area_urns` the schools of the reporting
    force's area (Registry.area_urns), where the prior expects the child most."""
    address = child.address
    return EngineChild(
        child_ref=ref, given_name=child.given_name, family_name=child.family_name,
        date_of_birth=child.date_of_birth, gender=child.gender or "",
        address_line1=(address.line1 or "") if address else "",
        postcode=(address.postcode or "") if address else "",
        upn=(child.upn or "").upper(),
        school_urn_hint=(child.school_hint.urn or "") if child.school_hint else "",
        area_urns=area_urns,
    )


def incident_facts(event: Reported) -> IncidentFacts:
    """The incident as the notifier may need it."""
    return facts_of(event.incident_id, event.incident, event.disclosure_fields)


def incident_date(event: Reported) -> date:
    """The incident's date in England, which decides who was on roll."""
    return event.incident.occurred_at.astimezone(LONDON).date()


def guess_la(
    registry: Registry, candidates: tuple[Candidate, ...], child: EngineChild,
    default: str | None = None,
) -> str | None:
    """The LA to hand a child to: its candidates' schools, the hinted school, its postcode
    area, else the reporting force's default LA."""
    las = [
        registry.schools[c.pupil.urn].la_code
        for c in candidates
        if c.pupil.urn in registry.schools
    ]
    if las:
        return Counter(las).most_common(1)[0][0]
    hinted = registry.schools.get(child.school_urn_hint)
    if hinted is not None:
        return hinted.la_code
    outward = postcode_outward(child.postcode or "")
    nearby = [s.la_code for s in registry.schools.values()
              if outward and postcode_outward(s.postcode) == outward]
    return Counter(nearby).most_common(1)[0][0] if nearby else default


def deadline_for(registry: Registry, candidates: tuple[Candidate, ...], now: datetime
                 ) -> datetime:
    """A review's deadline: the earliest school-day start among its candidates' schools."""
    known = (registry.schools.get(urn) for urn in {c.pupil.urn for c in candidates})
    return review_deadline(now, [(s.calendar, s.day_starts_at) for s in known if s is not None])


def candidate_view(candidate: Candidate, registry: Registry) -> dict[str, Any]:
    """What a reviewer sees of one candidate."""
    pupil = candidate.pupil
    school = registry.schools.get(pupil.urn)
    return {
        "urn": pupil.urn, "school_name": school.name if school else "", "upn": pupil.upn,
        "given_name": pupil.given_name, "preferred_name": pupil.preferred_name,
        "family_name": pupil.family_name, "former_family_name": pupil.former_family_name,
        "date_of_birth": pupil.date_of_birth.isoformat(), "gender": pupil.gender,
        "address_line1": pupil.address_line1, "postcode": pupil.postcode,
        "enrolment_status": pupil.enrolment_status, "score": round(candidate.score, 2),
        "agreements": dict(candidate.agreements),
        "explanation": explanation(candidate),
    }


def explanation(candidate: Candidate) -> list[dict[str, Any]]:
    """Why the model scored a candidate so: per field, the level reached and its weight in
    bits (log2 of m/u), with the prior that one pupil among the roll is the child."""
    levels = candidate.agreements
    return [{"field": name, "level": levels.get(name, ""), "bits": round(bits, 2)}
            for name, bits in candidate.bits.items()]


def unmatched_reason(child: EngineChild, on: date) -> UnmatchedReason:
    """Too young for any roll, or school age but on none."""
    born = child.date_of_birth
    return "not_school_age" if age_on(born, on) < YOUNGEST_ON_A_ROLL else "not_on_roll"


_DECIDED = text("""
SELECT incident_id, child_index, version FROM matcher.match_decisions
WHERE incident_id = ANY(CAST(:ids AS uuid[]))""")
# in key order, so two matchers writing overlapping polls lock rows in the same order; a later
# version's decision replaces the earlier one
_DECIDE = text("""
INSERT INTO matcher.match_decisions (incident_id, child_index, child_id, status, urns,
  score, reason, agreements, decided_at, version)
SELECT r.incident_id, r.child_index, r.child_id, r.status, CAST(r.urns AS jsonb), r.score,
  r.reason, CAST(r.agreements AS jsonb), r.decided_at, r.version
FROM unnest(CAST(:incident_id AS uuid[]), CAST(:child_index AS smallint[]),
  CAST(:child_id AS uuid[]), CAST(:status AS varchar[]), CAST(:urns AS text[]),
  CAST(:score AS float8[]), CAST(:reason AS varchar[]), CAST(:agreements AS text[]),
  CAST(:decided_at AS timestamptz[]), CAST(:version AS smallint[]))
  AS r(incident_id, child_index, child_id, status, urns, score, reason, agreements, decided_at,
  version)
ORDER BY r.incident_id, r.child_index
ON CONFLICT (incident_id, child_index) DO UPDATE SET child_id = excluded.child_id,
  status = excluded.status, urns = excluded.urns, score = excluded.score,
  reason = excluded.reason, agreements = excluded.agreements,
  decided_at = excluded.decided_at, version = excluded.version""")
_REVIEW = text("""
INSERT INTO matcher.reviews (review_id, incident_id, child_index, child_id, la_code, child,
  incident, candidates, reason, created_at, deadline_at, version)
SELECT r.review_id, r.incident_id, r.child_index, r.child_id, r.la_code, CAST(r.child AS jsonb),
  CAST(r.incident AS jsonb), CAST(r.candidates AS jsonb), r.reason, r.created_at,
  r.deadline_at, r.version
FROM unnest(CAST(:review_id AS uuid[]), CAST(:incident_id AS uuid[]),
  CAST(:child_index AS smallint[]), CAST(:child_id AS uuid[]), CAST(:la_code AS varchar[]),
  CAST(:child AS text[]), CAST(:incident AS text[]), CAST(:candidates AS text[]),
  CAST(:reason AS varchar[]), CAST(:created_at AS timestamptz[]),
  CAST(:deadline_at AS timestamptz[]), CAST(:version AS smallint[]))
  AS r(review_id, incident_id, child_index, child_id, la_code, child, incident, candidates,
  reason, created_at, deadline_at, version)
ORDER BY r.review_id""")
_DECISION_COLUMNS = ("incident_id", "child_index", "child_id", "status", "urns", "score",
                     "reason", "agreements", "decided_at", "version")
_REVIEW_COLUMNS = ("review_id", "incident_id", "child_index", "child_id", "la_code", "child",
                   "incident", "candidates", "reason", "created_at", "deadline_at", "version")
_JSON_COLUMNS = frozenset({"urns", "agreements", "child", "incident", "candidates"})


@dataclass(frozen=True)
class DecisionRows:
    """One child's decision as the rows that store it and the event that announces it."""

    status: str
    decision: dict[str, Any]
    review: dict[str, Any] | None
    staged: tuple[str, str, Envelope[Any]]  # (topic, key, envelope) for the outbox


def version_of(event: Reported) -> int:
    """The version of the report an event carries (a new incident's is 1)."""
    return event.version if isinstance(event, IncidentCorrected) else 1


async def decided_versions(conn: AsyncConnection, incident_ids: Collection[uuid.UUID]
                           ) -> dict[tuple[uuid.UUID, int], int]:
    """The version each child of these incidents was last decided at, in one statement (a
    child is decided exactly once per version: one decided at this version or a later one is
    skipped)."""
    if not incident_ids:
        return {}
    found = await conn.execute(_DECIDED, {"ids": list(incident_ids)})
    return {(row.incident_id, row.child_index): row.version for row in found}


def decision_rows(
    conn: AsyncConnection, *, event: Reported, index: int, decision: Decision,
    registry: Registry, topic_prefix: str, now: datetime,
) -> DecisionRows:
    """One child's decision row, its review row if it needs one (content sealed with the
    connection's keyring), and its event; written with `write_decisions`."""
    child = event.incident.children[index]
    report = engine_child(child, str(index))
    child_id = child_id_for(event.incident_id, index)
    version = version_of(event)
    base = {"incident_id": event.incident_id, "child_index": index, "child_id": child_id,
            "decided_at": now, "reason": decision.reason[:64], "version": version,
            "urns": [], "score": None, "agreements": {}}
    payload: EventPayload
    review: dict[str, Any] | None = None
    if decision.status == "matched":
        schools = [school_match(c, registry) for c in decision.matches]
        row = base | {"status": "matched", "urns": [s.urn for s in schools],
                      "score": max(s.score for s in schools),
                      "agreements": decision.matches[0].agreements}
        payload = ChildMatched(child_id=child_id, child_index=index, incident=incident_facts(event),
                               child=child, schools=schools, decided_by="engine", matched_at=now,
                               version=version)
        topic = topics.MATCHES
    elif decision.status == "review":
        la_code = guess_la(registry, decision.candidates, report, event.default_la_code)
        review_id = uuid.uuid5(child_id, versioned("review", version))
        deadline_at = deadline_for(registry, decision.candidates, now)
        review = {
            "review_id": review_id, "incident_id": event.incident_id, "child_index": index,
            "child_id": child_id, "la_code": la_code, **sealed_review(
                conn, review_id, at=now, child=child.model_dump(mode="json"),
                incident=incident_facts(event).model_dump(mode="json"),
                candidates=[candidate_view(c, registry) for c in decision.candidates]),
            "reason": decision.reason[:64], "created_at": now, "deadline_at": deadline_at,
            "version": version}
        row = base | {"status": "review"}
        payload = ChildNeedsReview(child_id=child_id, child_index=index,
                                   incident_id=event.incident_id, review_id=review_id,
                                   la_code=la_code, candidates=len(decision.candidates),
                                   queued_at=now, deadline_at=deadline_at, version=version,
                                   force_code=event.incident.force_code)
        topic = topics.REVIEWS
    else:
        reason = unmatched_reason(report, incident_date(event))
        row = base | {"status": "unmatched"}
        payload = ChildUnmatched(child_id=child_id, child_index=index,
                                 incident=incident_facts(event), child=child,
                                 la_code=guess_la(registry, decision.candidates, report,
                                                  event.default_la_code),
                                 reason=reason, decided_by="engine", decided_at=now,
                                 version=version)
        topic = topics.MATCHES
    event_id = uuid.uuid5(child_id, versioned(payload.event_type, version))
    envelope = wrap(payload, event_id=event_id, occurred_at=now, correlation_id=event.incident_id)
    return DecisionRows(status=decision.status, decision=row, review=review,
                        staged=(f"{topic_prefix}{topic}", str(event.incident_id), envelope))


async def write_decisions(conn: AsyncConnection, rows: Sequence[DecisionRows], *,
                          topic_prefix: str) -> None:
    """Store many children's decisions (at most one per child) and stage their events in the
    caller's transaction: one statement each for the decisions, the reviews and the outbox."""
    if not rows:
        return
    await conn.execute(_DECIDE, _columns([r.decision for r in rows], _DECISION_COLUMNS))
    reviewed = [r.review for r in rows if r.review is not None]
    if reviewed:
        await conn.execute(_REVIEW, _columns(reviewed, _REVIEW_COLUMNS))
    await add_all_to_outbox(conn, source=f"{topic_prefix}{SOURCE}",
                            staged=[r.staged for r in rows])


def _columns(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Rows as one array per column (JSON documents as text) for an `unnest` statement."""
    return {name: [json.dumps(row[name]) if name in _JSON_COLUMNS else row[name]
                   for row in rows] for name in names}


def school_match(candidate: Candidate, registry: Registry) -> SchoolMatch:
    """One matched roll row as the event carries it."""
    school = registry.schools.get(candidate.pupil.urn)
    return SchoolMatch(urn=candidate.pupil.urn, upn=candidate.pupil.upn or None,
                       la_code=school.la_code if school else "", score=round(candidate.score, 2))
