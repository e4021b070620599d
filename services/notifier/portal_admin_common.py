"""What the admin's pages (services/notifier/portal_admin*.py) share: calls to the owning
services with the admin's own token, their refusals as error-summary lines, contact rows and
file uploads in forms."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from fastapi import Request
from sqlalchemy import select
from starlette.datastructures import UploadFile

from services.common.problems import Problem
from services.common.security import Principal
from services.notifier.models import local_authorities
from services.notifier.portal_pages import (
    checked_form,
    ctx_of,
    session_token,
    signed_in,
)

FORCE = re.compile(r"^[A-Z]{2,10}$")
LA = re.compile(r"^[A-Z0-9]{1,8}$")
URN = re.compile(r"^[0-9]{6,7}$")
LA_ROLES = (("safeguarding", "Safeguarding contact"), ("review", "Review contact"),
            ("duty_manager", "Duty manager"))
SCHOOL_ROLES = (("dsl", "Designated safeguarding lead"), ("deputy_dsl", "Deputy DSL"),
                ("holiday_cover", "Holiday cover"))
BLANK_CONTACTS = 2  # empty contact rows offered below the existing ones
FIELD_WORDS = {"occurred_at": "When the incident happened", "incident_type": "Incident type",
               "summary": "Summary of the incident", "present_at_incident":
               "Whether the child was present", "voice_of_child": "Voice of the child",
               "gender": "Gender", "address": "Address", "upn": "Unique pupil number (UPN)"}


async def admin_of(request: Request) -> Principal | None:
    """The signed-in admin, or None (the page sends them to sign in)."""
    return await signed_in(request, "admin")


async def call(request: Request, client: httpx.AsyncClient, method: str, path: str, *,
               json: Any = None, content: bytes | None = None, media_type: str | None = None,
               params: Mapping[str, str] | None = None) -> httpx.Response:
    """The owning service's answer to a call with the admin's own token; a Problem (shown as
    an error page) when it refuses the token or is away."""
    headers = {"Authorization": f"Bearer {session_token(request)}"}
    if media_type:
        headers["Content-Type"] = media_type
    try:
        answer = await client.request(method, path, json=json, content=content,
                                      headers=headers, params=params)
    except httpx.HTTPError:
        raise Problem(503, "Service unavailable", "A service did not answer. Try again in a "
                      "minute.") from None
    if answer.status_code in (401, 403):
        raise Problem(403, "Sign in again", "Your session may not do that any more: sign out "
                      "and sign in again.")
    if answer.status_code >= 500 or answer.status_code == 415:
        raise Problem(503, "Service unavailable", "A service could not do that now. Try again "
                      "in a minute.")
    return answer


def errors_of(answer: httpx.Response, ids: Mapping[str, str] | None = None
              ) -> list[dict[str, str]]:
    """A refusal's problem+json as error-summary lines, each linking to its field
    (`contacts[1].email` → `#contacts-1-email`) or, with `ids`, to the id given for it (for
    `""`: the file whose rows or whole were refused)."""
    try:
        problem = answer.json()
    except ValueError:
        problem = {}
    lines = []
    for e in problem.get("errors") or []:
        where = str(e.get("field") or "")
        row = e.get("row")
        # a file's row problems link to the file's input; a form's to the field named
        anchor = (ids or {}).get("" if row is not None else where) or re.sub(
            r"[\[\].]+", "-", where).strip("-")
        words = f"{where}: " if where else ""
        prefix = f"Row {row}: " if row is not None else ""
        lines.append({"href": f"#{anchor}" if anchor else "",
                      "message": f"{prefix}{words}{e.get('message', 'invalid')}".strip()})
    if problem.get("error_count", 0) > len(lines):
        lines.append({"href": "", "message": f"… and {problem['error_count'] - len(lines)} "
                      "more problems."})
    return lines or [{"href": "", "message": str(problem.get("detail") or problem.get("title")
                                                 or "That was refused.")}]


def contacts_of(form: Mapping[str, Any], roles: Sequence[tuple[str, str]]
                ) -> list[dict[str, str]]:
    """The `contacts-N-role|name|email` rows of a form; rows left empty are dropped."""
    found = []
    for n in range(60):
        row = {k: str(form.get(f"contacts-{n}-{k}", "")).strip() for k in ("role", "name",
                                                                          "email")}
        if row["name"] or row["email"]:
            found.append(row | {"role": row["role"] or roles[0][0]})
    return found


def contact_rows(contacts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The contacts to show in a form: the stored ones, then empty rows to add more."""
    return [*contacts, *({"role": "", "name": "", "email": ""}
                         for _ in range(BLANK_CONTACTS))]


async def upload_of(request: Request) -> tuple[Mapping[str, Any], bytes | None, str]:
    """A multipart form after the CSRF check, its `file` (None when none was chosen) and that
    file's media type: iCalendar when it says so, else CSV."""
    form = await checked_form(request)
    file = form.get("file")
    body = await file.read() if isinstance(file, UploadFile) else b""
    if not body or not isinstance(file, UploadFile):
        return form, None, ""
    named = (file.filename or "").lower()
    ics = named.endswith(".ics") or body.lstrip()[:15].upper() == b"BEGIN:VCALENDAR"
    return form, body, "text/calendar" if ics else "text/csv"


def missing_file(field: str = "file") -> list[dict[str, str]]:
    """The error when the form came without a file."""
    return [{"href": f"#{field}", "message": "Choose a file to upload"}]



async def la_names(request: Request) -> dict[str, str]:
    """The LAs the notifier knows, code → name."""
    async with ctx_of(request).engine.connect() as conn:
        rows = await conn.execute(select(local_authorities.c.la_code, local_authorities.c.name)
                                  .order_by(local_authorities.c.la_code))
        return {r.la_code: r.name for r in rows}


