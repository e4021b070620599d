"""Every event payload type, keyed by (type, version), for consumers to parse with."""

from __future__ import annotations

from schemas.envelope import EventPayload
from schemas.incidents import IncidentReceived, IncidentWithdrawn

_PAYLOADS: tuple[type[EventPayload], ...] = (IncidentReceived, IncidentWithdrawn)

EVENT_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    (cls.event_type, cls.event_version): cls for cls in _PAYLOADS
}
