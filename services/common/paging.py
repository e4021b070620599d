"""Keyset pages for list endpoints: `limit` rows and an opaque `cursor` to the next page.

A cursor is the sort key of the last row shown (URL-safe base64 of a JSON list of
strings), so a page starts exactly after it however rows are added or leave the list
meanwhile. A cursor only says where to start: the query still shows only what the caller
may see, so a crafted one reveals nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from services.common.problems import Problem, documented_rules

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"  # unpadded URL-safe base64
NEXT_CURSOR_HEADER = "X-Next-Cursor"  # where a list answered as a bare array puts its cursor
CURSOR_RULES = documented_rules("cursor is one a page of this list gave")  # openapi_extra

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT,
                             description=f"rows per page (at most {MAX_LIMIT})")]
Cursor = Annotated[str | None, Query(
    max_length=500, pattern=CURSOR_PATTERN,
    description="`next_cursor` of the page before (absent: the first page)")]


def encode_cursor(*key: str | None) -> str:
    """The cursor of the page that starts after the row with this sort key."""
    raw = json.dumps(list(key), separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def instant(text: str) -> datetime:
    """A cursor's time: ISO 8601 with its offset (a naive time would not compare)."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError("no offset")
    return at


def optional(parse: Callable[[str], Any]) -> Callable[[str | None], Any]:
    """A parser for a part of the key that may be null (a null deadline)."""
    return lambda value: None if value is None else parse(value)


def decode_cursor(cursor: str, *parsers: Callable[[Any], Any]) -> tuple[Any, ...]:
    """The sort key a cursor holds, each part through its parser (a null only where the
    parser is `optional`); 422 for anything this API did not make."""
    try:
        data = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                           validate=True))
        if not isinstance(data, list) or len(data) != len(parsers):
            raise ValueError("shape")
        # a null reaches the parser: `instant` and `uuid.UUID` refuse it
        return tuple(parse(None if value is None else _text(value))
                     for parse, value in zip(parsers, data, strict=True))
    except (ValueError, TypeError, AttributeError, OverflowError, binascii.Error,
            UnicodeDecodeError):
        message = "is not a cursor this API gave"
        raise Problem(422, "Invalid query", f"cursor {message}.",
                      extra={"errors": [{"field": "cursor", "message": message}]}) from None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def cut(rows: Sequence[Any], limit: int, key: Callable[[Any], Sequence[str | None]]
        ) -> tuple[Sequence[Any], str | None]:
    """The first `limit` of `limit + 1` rows fetched, and the next page's cursor (None when
    these were the last)."""
    if len(rows) <= limit:
        return rows, None
    shown = rows[:limit]
    return shown, encode_cursor(*key(shown[-1]))
