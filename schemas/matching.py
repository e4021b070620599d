"""Matching events: each reported child is matched, needs review, or is unmatched."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.envelope import EventPayload
from schemas.incidents import ChildReport, IncidentType

DecidedBy = Literal["engine", "review"]
UnmatchedReason = Literal["not_on_roll", "not_school_age", "home_educated", "no_candidate"]


def child_id_for(incident_id: uuid.UUID, index: int) -> uuid.UUID:
    """A stable id for the n-th child of an incident (the `child_id` these events carry)."""
    return uuid.uuid5(incident_id, f"child:{index}")


class IncidentFacts(BaseModel):
    """What the notifier may need of the incident; the force's profile decides what is shown."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    incident_id: uuid.UUID
    force_code: str
    occurred_at: AwareDatetime
    incident_type: IncidentType
    summary: str | None = None
    disclosure_fields: list[str] = Field(default_factory=list)


class SchoolMatch(BaseModel):
    """One school roll the child is on."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    urn: str
    upn: str | None = None
    la_code: str
    score: float


class ChildMatched(EventPayload):
    """A child was resolved to the school(s) whose roll they are on."""

    event_type = "ChildMatched"
    child_id: uuid.UUID
    child_index: int
    incident: IncidentFacts
    child: ChildReport
    schools: list[SchoolMatch] = Field(min_length=1)
    decided_by: DecidedBy
    matched_at: AwareDatetime


class ChildNeedsReview(EventPayload):
    """A child's match is ambiguous; a local-authority officer must decide."""

    event_type = "ChildNeedsReview"
    child_id: uuid.UUID
    child_index: int
    incident_id: uuid.UUID
    review_id: uuid.UUID
    la_code: str | None
    candidates: int
    queued_at: AwareDatetime
    # the earliest start of the school day among the candidate schools (None: before 0010)
    deadline_at: AwareDatetime | None = None
    # set when another LA accepted a handover of this review: it is theirs now
    handed_over_from: str | None = None
    # the reporting force (None: published before it was carried), for its receipts
    force_code: str | None = None


class ChildUnmatched(EventPayload):
    """A child is on no school roll: the local authority's safeguarding contact is told."""

    event_type = "ChildUnmatched"
    child_id: uuid.UUID
    child_index: int
    incident: IncidentFacts
    child: ChildReport
    la_code: str | None
    reason: UnmatchedReason
    decided_by: DecidedBy
    decided_at: AwareDatetime
