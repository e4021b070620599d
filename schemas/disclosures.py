"""Disclosure events: every time a child's data is shown or sent to anyone."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas.envelope import EventPayload

Channel = Literal["api", "portal", "email", "webhook", "cli", "export"]
PurgeTrigger = Literal["cli", "schedule"]


class DisclosureRecorded(EventPayload):
    """Who saw what about which child, when, through which channel and why."""

    event_type = "DisclosureRecorded"
    disclosure_id: uuid.UUID
    at: AwareDatetime
    actor: str
    actor_role: str
    action: str
    channel: Channel
    purpose: str
    school_urn: str | None = None
    la_code: str | None = None
    child_key: str
    notification_id: uuid.UUID | None = None
    review_id: uuid.UUID | None = None
    incident_id: uuid.UUID | None = None


class ContentPurged(EventPayload):
    """A service erased the child content of rows past their retention period (the rows, their
    ids and timestamps stay); the audit log records it as `retention.purge`."""

    event_type = "ContentPurged"
    purge_id: uuid.UUID
    at: AwareDatetime
    service: str
    kind: str  # what was erased: "notifications", "reviews", "outbox events"
    count: int = Field(ge=1)
    cutoff: AwareDatetime
    retention_days: int = Field(ge=1)
    trigger: PurgeTrigger
