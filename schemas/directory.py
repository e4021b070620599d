"""Registry events on `registry.v1`: each is the whole current state of one school, LA or
calendar, keyed by it, so the compacted topic alone rebuilds a service's copy."""

from __future__ import annotations

from datetime import date, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import EventPayload

CalendarKind = Literal["closed", "open"]


class Contact(BaseModel):
    """A named person or mailbox a school or LA gives for a role."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    role: str
    name: str
    email: str


class Webhook(BaseModel):
    """Where the school's system takes signed notices, and the secret they are signed with."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    url: str
    secret: str


class SchoolChanged(EventPayload):
    """A school's registration as it now stands (created, edited or imported)."""

    event_type = "SchoolChanged"
    urn: str
    name: str
    la_code: str
    status: str
    participates: bool
    day_starts_at: time
    contacts: list[Contact] = Field(default_factory=list)
    webhook: Webhook | None = None
    deputy_after_minutes: int = Field(ge=1)
    la_after_minutes: int = Field(ge=1)


class LocalAuthorityChanged(EventPayload):
    """A local authority, its contacts and its safety-net settings as they now stand."""

    event_type = "LocalAuthorityChanged"
    la_code: str
    name: str
    contacts: list[Contact] = Field(default_factory=list)
    # minutes before a deadline at which the LA's duty manager is called
    escalation_before_minutes: int = Field(default=30, ge=1, le=720)
    # the DSL is prompted for attendance not yet recorded, then the LA is told (London time)
    attendance_prompt_at: time = time(10, 0)
    attendance_la_at: time = time(12, 0)


class CalendarDay(BaseModel):
    """One day that differs from the default school days (Monday to Friday less bank
    holidays)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    day: date
    kind: CalendarKind


class SchoolCalendarChanged(EventPayload):
    """A school's effective calendar as it now stands: every day that differs from the default
    (its LA's term dates, or its own, with its overrides on top; an empty list: the default)."""

    event_type = "SchoolCalendarChanged"
    urn: str
    days: list[CalendarDay] = Field(default_factory=list)


def registry_key(kind: Literal["school", "la", "calendar"], code: str) -> str:
    """The Kafka key of one registry entity: compaction keeps its latest state."""
    return f"{kind}:{code}"
