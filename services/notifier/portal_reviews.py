"""`/portal/reviews`: the LA officer's review queue in the browser, on the matcher's API.

Each call carries the signed-in officer's own token, so the matcher authorises every read
(their own LAs only) and records each child and candidate shown as a disclosure; the notifier
keeps nothing of a review. No script runs (the CSP forbids it): the countdown to a review's
deadline is rendered on the server, its bar is a <meter>.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.common.escalation import ESCALATION_BEFORE_MINUTES
from services.common.problems import Problem
from services.notifier.portal_pages import (
    SecureRoute,
    checked_form,
    ctx_of,
    long_date,
    page,
    problem_page,
    session_token,
    signed_in,
    to_sign_in,
)

router = APIRouter(route_class=SecureRoute)
OUTCOMES = (("not_on_roll", "On none of these rolls (not on roll)"),
            ("not_school_age", "Not of school age"), ("home_educated", "Home educated"))
BAR_MINUTES = 12 * 60  # a full bar: half a day or more before the deadline
MAX_REASON = 500  # as the matcher keeps it
_MESSAGES = {404: "There is no such review for your local authority.",
             410: "This review's content was erased under the retention policy."}
_GENDERS = {"F": "Female", "M": "Male", "X": "Other", "U": "Not known"}
# the matcher's comparison levels (services/matcher/comparisons.py) in words: agree, partly,
# disagree or unknown, each said in text as well as shown
_LEVELS: dict[str, tuple[str, str]] = {
    "exact": ("agree", "Agrees"), "agree": ("agree", "Agrees"),
    "preferred": ("agree", "Agrees (preferred name)"), "nickname": ("agree", "Agrees (nickname)"),
    "former": ("agree", "Agrees (former family name)"),
    "spelling_variant": ("agree", "Agrees (spelling variant)"),
    "same_household": ("agree", "Agrees (same household)"),
    "same_postcode": ("agree", "Agrees (same postcode)"),
    "typo": ("partly", "Close (a typing slip)"),
    "fuzzy_high": ("partly", "Close (similar spelling)"),
    "fuzzy_low": ("partly", "Partly agrees (some letters differ)"),
    "part": ("partly", "Partly agrees (part of the name)"),
    "day_month_swap": ("partly", "Close (day and month swapped)"),
    "one_digit": ("partly", "Close (one digit differs)"),
    "same_street": ("partly", "Partly agrees (same street)"),
    "same_district": ("partly", "Partly agrees (same district)"),
    "swapped": ("partly", "Given and family names swapped"),
    "disagree": ("disagree", "Disagrees"), "missing": ("unknown", "Not compared: not given"),
}
_FIELDS = (("Given name", "given_name"), ("Family name", "family_name"),
           ("Date of birth", "date_of_birth"), ("Gender", "gender"), ("Address", "address"),
           ("UPN", "upn"), ("School", "school_hint"))


@dataclass(frozen=True)
class Countdown:
    """Time left before a deadline, in words and on a bar."""

    minutes_left: int
    text: str
    overdue: bool
    bar: int  # minutes shown on the bar, 0..BAR_MINUTES


def countdown(deadline: datetime, now: datetime) -> Countdown:
    """'1 h 20 min left', '5 min left' or 'overdue'."""
    left = math.floor((deadline - now).total_seconds() / 60)
    if left <= 0:
        return Countdown(left, "overdue", True, 0)
    hours, minutes = divmod(left, 60)
    text = f"{minutes} min left" if not hours else (
        f"{hours} h left" if not minutes else f"{hours} h {minutes} min left")
    return Countdown(left, text, False, min(left, BAR_MINUTES))


@router.get("/reviews")
async def review_queue(request: Request) -> Response:
    """The open reviews of the officer's LAs, the nearest deadline first."""
    if await signed_in(request, "reviews:read") is None:
        return to_sign_in()
    answer = await _call(request, "GET", "/v1/reviews")
    if isinstance(answer, Response):
        return answer
    now = ctx_of(request).clock()
    items = [_queued(item, now) for item in answer.json()]
    items.sort(key=lambda i: (i["deadline"] is None, i["deadline"] or now, i["created_at"]))
    return await page(request, "reviews.html", {
        "items": items, "resolved": request.query_params.get("resolved"),
        "bar_max": BAR_MINUTES, "bar_low": ESCALATION_BEFORE_MINUTES})


@router.get("/reviews/{review_id}")
async def review(request: Request, review_id: str) -> Response:
    """The reported child beside each candidate pupil (the matcher audits the view)."""
    if await signed_in(request, "reviews:read") is None:
        return to_sign_in()
    return await _review_page(request, review_id)


@router.post("/reviews/{review_id}/resolve")
async def resolve(request: Request, review_id: str) -> Response:
    """Resolve to one candidate's school, or to an outcome, with a reason."""
    form = await checked_form(request)
    if await signed_in(request, "reviews:resolve") is None:
        return to_sign_in()
    choice, reason = str(form.get("choice", "")), str(form.get("reason", "")).strip()
    body, errors = _resolution(choice, reason)
    kept = {"choice": choice, "reason": reason[:MAX_REASON]}
    if body is None:
        return await _review_page(request, review_id, errors=errors, form=kept, status=422)
    try:
        path = f"/v1/reviews/{uuid.UUID(review_id)}/resolve"
    except ValueError:
        return await problem_page(request, Problem(404, "Not found"), _MESSAGES)
    answer = await _call(request, "POST", path, json=body)
    if isinstance(answer, Response):
        return answer
    if answer.status_code in (409, 422):
        return await _review_page(request, review_id, errors=_matcher_errors(answer), form=kept,
                                  status=answer.status_code)
    if not answer.is_success:
        return await _unavailable(request)
    return RedirectResponse("/portal/reviews?resolved=1", status_code=303)


async def _review_page(request: Request, review_id: str, *,
                       errors: Sequence[Mapping[str, str]] = (),
                       form: Mapping[str, str] | None = None, status: int = 200) -> Response:
    try:
        path = f"/v1/reviews/{uuid.UUID(review_id)}"
    except ValueError:
        return await problem_page(request, Problem(404, "Not found"), _MESSAGES)
    answer = await _call(request, "GET", path)
    if isinstance(answer, Response):
        return answer
    detail = answer.json()
    deadline = _deadline(detail)
    candidates = detail.get("candidates") or []
    return await page(request, "review.html", {
        "r": detail, "candidates": candidates, "rows": comparison(detail.get("child") or {},
                                                                  candidates),
        "countdown": countdown(deadline, ctx_of(request).clock()) if deadline else None,
        "outcomes": OUTCOMES, "errors": errors, "form": form or {},
        "first_choice": "choice-1" if candidates else f"choice-{OUTCOMES[0][0]}",
        "bar_max": BAR_MINUTES, "bar_low": ESCALATION_BEFORE_MINUTES,
        "max_reason": MAX_REASON}, status=status)


def comparison(child: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]
               ) -> list[dict[str, Any]]:
    """One row per field: the reported value, then each candidate's with its agreement."""
    rows = [{"label": label, "child": _reported(child, key),
             "cells": [_cell(_candidate_value(c, key), (c.get("agreements") or {}).get(key))
                       for c in candidates]} for label, key in _FIELDS]
    if any((c.get("agreements") or {}).get("name_order") for c in candidates):
        rows.append({"label": "Name order", "child": "As reported", "cells": [
            _cell("", (c.get("agreements") or {}).get("name_order") or "exact")
            for c in candidates]})
    return rows


def _cell(value: str, level: str | None) -> dict[str, str]:
    mark, words = _LEVELS.get(level or "", ("unknown", "Not compared"))
    if level and level not in _LEVELS:
        words = level.replace("_", " ").capitalize()
    return {"value": value, "mark": mark, "words": words}


def _reported(child: Mapping[str, Any], key: str) -> str:
    value = child.get(key)
    if key == "address":
        parts = ("line1", "line2", "town", "postcode")
        return ", ".join(str(value[p]) for p in parts if value.get(p)) if value else ""
    if key == "school_hint":
        if not value:
            return ""
        urn = f" (URN {value['urn']})" if value.get("urn") else ""
        return f"{value.get('name') or 'A school'}{urn}"
    return _plain(key, value)


def _candidate_value(candidate: Mapping[str, Any], key: str) -> str:
    value = _plain(key, candidate.get(key))
    if key == "given_name" and candidate.get("preferred_name"):
        value += f" (known as {candidate['preferred_name']})"
    if key == "family_name" and candidate.get("former_family_name"):
        value += f" (formerly {candidate['former_family_name']})"
    if key == "address":
        parts = (candidate.get("address_line1"), candidate.get("postcode"))
        value = ", ".join(p for p in parts if p)
    if key == "school_hint":
        value = f"{candidate.get('school_name') or 'School'} (URN {candidate.get('urn')})"
    return value


def _plain(key: str, value: Any) -> str:
    if not value:
        return ""
    if key == "date_of_birth":
        return long_date(str(value))
    if key == "gender":
        return _GENDERS.get(str(value), str(value))
    return str(value)


def _queued(item: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    deadline = _deadline(item)
    return dict(item) | {"deadline": deadline,
                         "countdown": countdown(deadline, now) if deadline else None}


def _deadline(review: Mapping[str, Any]) -> datetime | None:
    """The review's deadline; before it had one, the next school day's start."""
    value = review.get("deadline_at") or review.get("school_day_starts_at")
    return datetime.fromisoformat(value) if value else None


def _resolution(choice: str, reason: str) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """The matcher's resolve body for the form's choice, or what is wrong with the form."""
    errors, body = [], None
    kind, _, rest = choice.partition(":")
    if kind == "school" and rest:
        urn, _, upn = rest.partition(":")
        body = {"urn": urn} | ({"upn": upn} if upn else {})
    elif kind == "outcome" and rest in dict(OUTCOMES):
        body = {"outcome": rest}
    else:
        errors.append({"target": "choice", "message": "Choose the pupil who is the reported "
                       "child, or why the child is on none of these rolls."})
    if not reason or len(reason) > MAX_REASON:
        errors.append({"target": "reason", "message": f"Give the reason for your decision "
                       f"(at most {MAX_REASON} characters)."})
    return (None if errors or body is None else body | {"reason": reason}), errors


def _matcher_errors(answer: httpx.Response) -> list[dict[str, str]]:
    """The matcher's refusal as error-summary lines (its words name fields, never values)."""
    try:
        problem = answer.json()
    except ValueError:
        problem = {}
    found = [{"target": "reason" if str(e.get("field", "")).startswith("reason") else "choice",
              "message": str(e.get("message", "invalid"))} for e in problem.get("errors") or []]
    return found or [{"target": "choice", "message": str(
        problem.get("detail") or problem.get("title") or "The review could not be resolved.")}]


async def _call(request: Request, method: str, path: str,
                json: Mapping[str, Any] | None = None) -> httpx.Response | Response:
    """The matcher's answer, or the page to show instead (sign in again, not found, away)."""
    try:
        answer = await ctx_of(request).matcher().request(
            method, path, json=json, headers={
                "Authorization": f"Bearer {session_token(request)}",
                # the matcher audits what the officer sees; it records the portal as the channel
                "X-Daybreak-Channel": "portal"})
    except httpx.HTTPError:
        return await _unavailable(request)
    if answer.status_code in (401, 403):
        return to_sign_in()
    if answer.status_code in _MESSAGES:
        return await problem_page(request, Problem(answer.status_code, "Not found" if
                                                   answer.status_code == 404 else "Gone"),
                                  _MESSAGES)
    if answer.status_code >= 500:
        return await _unavailable(request)
    return answer


async def _unavailable(request: Request) -> Response:
    return await page(request, "error.html", {
        "title": "The review queue is unavailable", "message": "Try again in a minute."},
        status=503, headers={"Retry-After": "5"})
