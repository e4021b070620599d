"""JSON log lines carry the consumed event's ids, never its payload."""

from __future__ import annotations

import json
import logging
import uuid

from schemas.envelope import wrap
from schemas.incidents import IncidentWithdrawn
from services.common.logs import JsonFormatter, bind_event


def _line(message: str) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, (), None)
    return dict(json.loads(JsonFormatter().format(record)))


def test_every_line_in_an_events_context_names_the_event_not_its_payload() -> None:
    correlation = uuid.uuid4()
    envelope = wrap(IncidentWithdrawn(incident_id=uuid.uuid4(), force_code="WMP",
                                      withdrawn_at="2026-11-22T08:00:00Z",
                                      reason="Secret reason text"),
                    correlation_id=correlation)
    bind_event(envelope)
    try:
        line = _line("handling")
    finally:
        bind_event(None)
    assert line["event_id"] == str(envelope.event_id)
    assert line["event_type"] == "IncidentWithdrawn"
    assert line["correlation_id"] == str(correlation)
    assert "Secret reason text" not in json.dumps(line)
    assert "event_id" not in _line("after")
