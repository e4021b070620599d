"""RFC 9457 problem details: every error the API returns."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
# what every route may answer: a malformed or oversized body, a bad field, a dependency away
EVERY_ROUTE = (400, 413, 422, 503)
# a key the client made up (an unknown field, a dict key) is named only if it looks like a name
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


class Problem(Exception):
    """An error with an HTTP status, raised by use cases and rendered as problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type_ = type_
        self.headers = headers
        self.extra = extra or {}


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring a problem+json body for each of these error statuses."""
    return {status: {"description": HTTPStatus(status).phrase, "content": {PROBLEM_JSON: {
        "schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"}}}}
        for status in statuses}


PROBLEM_SCHEMA_NAME = "Problem"
# the one problem+json shape (RFC 9457) every error answer has; added to each app's components
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "title": PROBLEM_SCHEMA_NAME, "required": ["type", "title", "status"],
    "description": "An RFC 9457 problem: `errors` names each refused field and its rule, "
                   "never the value sent.",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        # a field's refusal names the field; a file's names its row (and field, if one)
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["message"],
            "properties": {"field": {"type": ["string", "null"]}, "message": {"type": "string"},
                           "row": {"type": ["integer", "null"]}}}},
        "error_count": {"type": "integer", "minimum": 0},
    },
}
RULES_KEY = "x-daybreak-rules"


def documented_rules(*rules: str, status: int = 422) -> dict[str, Any]:
    """`openapi_extra` for a route that checks rules JSON Schema cannot say (one field against
    another, a file's rows): listed under `x-daybreak-rules`, refused with `status`."""
    return {RULES_KEY: {"status": status, "rules": list(rules)}}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """`('body', 'children', 0, 'date_of_birth')` → `children[0].date_of_birth`."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header", "cookie") and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part) if _FIELD_NAME.fullmatch(str(part)) else "?"
            out += f".{name}" if out else name
    return out or "body"
