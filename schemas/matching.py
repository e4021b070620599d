"""Matching events: each reported child is matched, needs review, or is unmatched."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.envelope import EventPayload
from schemas.incidents import ChildReport, IncidentIn, IncidentType

DecidedBy = Literal["engine", "review"]
# which version of the police report a decision is about: 1 for the first report, N for the
# N-th (a correction re-matches only the children it changed)
Version = Annotated[int, Field(ge=1)]
UnmatchedReason = Literal["not_on_roll", "not_school_age", "home_educated", "no_candidate"]


def child_id_for(incident_id: uuid.UUID, index: int) -> uuid.UUID:
    """A stable id for the n-th child of an incident (the same in every version of it)."""
    return uuid.uuid5(incident_id, f"child:{index}")


def versioned(name: str, version: int) -> str:
    """A name for a stable id that the first version keeps unchanged and later ones extend."""
    return name if version == 1 else f"{name}:v{version}"


class IncidentFacts(BaseModel):
    """What the notifier may need of the incident; the force's profile decides what is shown."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    incident_id: uuid.UUID
    force_code: str
    occurred_at: AwareDatetime
    incident_type: IncidentType
    summary: str | None = None
    disclosure_fields: list[str] = Field(default_factory=list)


def facts_of(incident_id: uuid.UUID, incident: IncidentIn,
             disclosure_fields: list[str]) -> IncidentFacts:
    """The facts of a reported (or corrected) incident that a notification keeps."""
    return IncidentFacts(
        incident_id=incident_id, force_code=incident.force_code,
        occurred_at=incident.occurred_at, incident_type=incident.incident_type,
        summary=incident.summary, disclosure_fields=disclosure_fields)


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
    sealed_paths = ("incident.summary", "child", "schools.*.upn")
    child_id: uuid.UUID
    child_index: int
    incident: IncidentFacts
    child: ChildReport
    schools: list[SchoolMatch] = Field(min_length=1)
    decided_by: DecidedBy
    matched_at: AwareDatetime
    version: Version = 1


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
    version: Version = 1


class ChildUnmatched(EventPayload):
    """A child is on no school roll: the local authority's safeguarding contact is told."""

    event_type = "ChildUnmatched"
    sealed_paths = ("incident.summary", "child")
    child_id: uuid.UUID
    child_index: int
    incident: IncidentFacts
    child: ChildReport
    la_code: str | None
    reason: UnmatchedReason
    decided_by: DecidedBy
    decided_at: AwareDatetime
    version: Version = 1
