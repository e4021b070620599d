"""Incident shapes: the police API body and the events that announce it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from schemas.envelope import EventPayload

# PostgreSQL text and jsonb cannot hold NUL: a child's text with one would be accepted here and
# then dead-lettered by every consumer that stores it, so the school would never be told
NO_NUL = r"^[^\x00]*$"
# what str.strip() removes: a text of these alone is empty once stripped, which JSON Schema's
# minLength cannot say, so a stripped required text says it as a pattern (and refuses NUL)
_STRIPPED = ("\t\n\x0b\x0c\r \x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000-\u200a"
             "\u2028\u2029\u202f\u205f\u3000")
NOT_BLANK = rf"^[^\x00]*[^\x00{_STRIPPED}][^\x00]*$"
Name = Annotated[str, StringConstraints(
    strip_whitespace=True, min_length=1, max_length=100, pattern=NOT_BLANK)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200, pattern=NO_NUL)]
LongText = Annotated[str, StringConstraints(max_length=2000, pattern=NO_NUL)]


def refuse_numbers(value: Any) -> Any:
    """A JSON number is no date or time, though pydantic would read it as a Unix timestamp."""
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 string")
    return value


IsoDate = Annotated[date, BeforeValidator(refuse_numbers)]
IsoDatetime = Annotated[AwareDatetime, BeforeValidator(refuse_numbers)]
ForceCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,10}$")]
IncidentReference = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
]
Postcode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10, pattern=NO_NUL)]
Upn = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9]{13}$")]
Urn = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,7}$")]
# a local authority's code as the registry keys it (GIAS "LA (code)" or a made-up one)
LA_CODE_PATTERN = r"^[A-Za-z0-9]{1,8}$"
LaCode = Annotated[str, StringConstraints(to_upper=True, pattern=LA_CODE_PATTERN)]
IncidentType = Literal["domestic_abuse", "domestic_abuse_crime", "domestic_abuse_non_crime"]
Gender = Literal["F", "M", "X", "U"]

MAX_CHILDREN = 20
# what a force's disclosure profile may let a school see (names and birth date always shown)
INCIDENT_DISCLOSABLE_FIELDS = ("occurred_at", "incident_type", "summary")
CHILD_DISCLOSABLE_FIELDS = ("present_at_incident", "voice_of_child", "gender", "address", "upn",
                            "school_hint")
DISCLOSABLE_FIELDS = INCIDENT_DISCLOSABLE_FIELDS + CHILD_DISCLOSABLE_FIELDS
CHILD_ALWAYS_SHOWN = ("given_name", "family_name", "date_of_birth")
INCIDENT_ALWAYS_SHOWN = ("incident_id", "force_code")
ADULT_AGE = 18


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Address(_Strict):
    """A child's home address as the police recorded it."""

    line1: ShortText | None = None
    line2: ShortText | None = None
    town: ShortText | None = None
    postcode: Postcode | None = None


class SchoolHint(_Strict):
    """The school the officer believes the child attends: evidence, never truth."""

    urn: Urn | None = None
    name: ShortText | None = None


class ChildReport(_Strict):
    """One child related to the incident, present or not."""

    given_name: Name
    family_name: Name
    date_of_birth: IsoDate
    gender: Gender | None = None
    address: Address | None = None
    upn: Upn | None = None
    school_hint: SchoolHint | None = None
    present_at_incident: StrictBool | None = None
    voice_of_child: LongText | None = None


class IncidentIn(_Strict):
    """The body of `POST /v1/incidents`. Beyond this schema: every child is under 18 on
    occurred_at's date and not born after it, occurred_at is not in the future (five minutes'
    clock skew allowed), each refused with 422; force_code is the caller's own force (403)."""

    force_code: ForceCode
    incident_reference: IncidentReference
    occurred_at: IsoDatetime
    incident_type: IncidentType
    summary: LongText | None = None
    children: list[ChildReport] = Field(min_length=1, max_length=MAX_CHILDREN)

    @model_validator(mode="after")
    def _children_are_children(self) -> IncidentIn:
        on = self.occurred_at.date()
        for child in self.children:
            if child.date_of_birth > on:
                raise ValueError("a child's date_of_birth is after occurred_at")
            if age_on(child.date_of_birth, on) >= ADULT_AGE:
                raise ValueError("a child is 18 or over on occurred_at")
        return self


def age_on(born: date, on: date) -> int:
    """Age in whole years on a date (born on 29 February: a year older on 1 March)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class WithdrawIn(_Strict):
    """The body of `POST /v1/incidents/{id}/withdraw`."""

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000,
                                             pattern=NOT_BLANK)]


class IncidentReceived(EventPayload):
    """A police force reported an incident; accepted by ingest."""

    event_type = "IncidentReceived"
    sealed_paths = ("incident.summary", "incident.children.*")
    incident_id: uuid.UUID
    received_at: AwareDatetime
    incident: IncidentIn
    disclosure_fields: list[str] = Field(default_factory=list)
    # the force's default LA: where a child with no usable address or school hint goes
    default_la_code: str | None = None


class IncidentCorrected(EventPayload):
    """A police force sent the whole corrected body of an incident (version 2 onwards).

    Children are identified by their position: `changed_children` are those whose body differs
    from the previous version (or are new), `withdrawn_children` those the correction dropped
    from the end. A child withdrawn before stays withdrawn and is in neither list.
    """

    event_type = "IncidentCorrected"
    sealed_paths = ("incident.summary", "incident.children.*")
    incident_id: uuid.UUID
    version: int = Field(ge=2)
    received_at: AwareDatetime
    incident: IncidentIn
    changed_children: list[int] = Field(default_factory=list)
    withdrawn_children: list[int] = Field(default_factory=list)
    disclosure_fields: list[str] = Field(default_factory=list)
    default_la_code: str | None = None


class ChildWithdrawn(EventPayload):
    """A police force withdrew one child of an incident (reported in error)."""

    event_type = "ChildWithdrawn"
    sealed_paths = ("reason",)  # the officer's words may name the child
    incident_id: uuid.UUID
    force_code: ForceCode
    child_index: int = Field(ge=0)
    withdrawn_at: AwareDatetime
    reason: str


class IncidentWithdrawn(EventPayload):
    """A police force retracted an incident it reported in error."""

    event_type = "IncidentWithdrawn"
    sealed_paths = ("reason",)
    incident_id: uuid.UUID
    force_code: ForceCode
    withdrawn_at: AwareDatetime
    reason: str


def disclosed_child(child: Mapping[str, Any], fields: Iterable[str], *,
                    also: Iterable[str] = ()) -> dict[str, Any]:
    """A child as the force's disclosure profile (`fields`) lets it be shown: the names and
    birth date always, another field only when the profile or the reader's task (`also`)
    names it."""
    shown = {*fields, *also}
    return ({k: child.get(k) for k in CHILD_ALWAYS_SHOWN}
            | {f: child.get(f) for f in CHILD_DISCLOSABLE_FIELDS if f in shown})


def disclosed_incident(incident: Mapping[str, Any], fields: Iterable[str], *,
                       also: Iterable[str] = ()) -> dict[str, Any]:
    """An incident as the force's disclosure profile lets it be shown: its id and force
    always, another fact only when the profile or the reader's task (`also`) names it."""
    shown = {*fields, *also}
    return ({k: incident.get(k) for k in INCIDENT_ALWAYS_SHOWN}
            | {f: incident.get(f) for f in INCIDENT_DISCLOSABLE_FIELDS if f in shown})


def incident_age_check(occurred_at: datetime, now: datetime) -> bool:
    """True when the incident is not in the future (five minutes of clock skew allowed)."""
    return (occurred_at - now).total_seconds() <= 300
