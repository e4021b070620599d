"""Structured JSON logs: event names and ids, never child data."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from schemas.envelope import Envelope

# the ids of the consumed event being handled, added to every log line in its context
_event_ids: ContextVar[dict[str, str] | None] = ContextVar("daybreak_event_ids", default=None)


def bind_event(envelope: Envelope[Any] | None) -> None:
    """Tag this context's log lines with the event's ids (never its payload); None clears."""
    if envelope is None:
        _event_ids.set(None)
        return
    ids = {"event_id": str(envelope.event_id), "event_type": envelope.type}
    if envelope.correlation_id is not None:
        ids["correlation_id"] = str(envelope.correlation_id)
    _event_ids.set(ids)


def event_log_fields() -> dict[str, str]:
    """`event_id`, `event_type` and `correlation_id` of the event in hand."""
    return dict(_event_ids.get() or {})


_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as JSON."""
        out: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **event_log_fields(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info and record.exc_info[0] is not None:
            # the exception's class only: its text may carry values from the input
            out["exc_type"] = record.exc_info[0].__name__
        return json.dumps(out, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
