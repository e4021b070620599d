"""Every event payload type, keyed by (type, version), for consumers to parse with."""

from __future__ import annotations

from schemas.audit import TreeHeadSigned
from schemas.directory import LocalAuthorityChanged, SchoolCalendarChanged, SchoolChanged
from schemas.disclosures import ContentPurged, DisclosureRecorded
from schemas.envelope import EventPayload
from schemas.identity import SessionsRevoked
from schemas.incidents import (
    ChildWithdrawn,
    IncidentCorrected,
    IncidentReceived,
    IncidentWithdrawn,
)
from schemas.matching import ChildMatched, ChildNeedsReview, ChildUnmatched
from schemas.notifications import NOTIFICATION_EVENTS

_PAYLOADS: tuple[type[EventPayload], ...] = (
    IncidentReceived, IncidentWithdrawn, ChildMatched, ChildNeedsReview, ChildUnmatched,
    DisclosureRecorded, ContentPurged, SchoolChanged, LocalAuthorityChanged,
    SchoolCalendarChanged, TreeHeadSigned, *NOTIFICATION_EVENTS, IncidentCorrected,
    ChildWithdrawn, SessionsRevoked,
)

EVENT_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    (cls.event_type, cls.event_version): cls for cls in _PAYLOADS
}
