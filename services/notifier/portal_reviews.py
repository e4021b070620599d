"""`/portal/reviews`: the LA officer's review queue in the browser, on the matcher's API.

Each call carries the signed-in officer's own token, so the matcher authorises every read
(their own LAs only) and records each child and candidate shown as a disclosure; the notifier
keeps nothing of a review. No script runs (the CSP forbids it): the countdown to a review's
deadline is rendered on the server, its bar is a <meter>.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.common.escalation import ESCALATION_BEFORE_MINUTES
from services.common.paging import MAX_LIMIT, NEXT_CURSOR_HEADER
from services.common.problems import Problem
from services.notifier import portal_inbox
from services.notifier import portal_labels as labels
from services.notifier.portal_pages import (
    SecureRoute,
    checked_form,
    ctx_of,
    page,
    problem_page,
    session_token,
    signed_in,
    to_sign_in,
)

router = APIRouter(route_class=SecureRoute)
OUTCOMES = (("not_on_roll", "On none of these rolls (not on roll)"),
            ("not_school_age", "Not of school age"), ("home_educated", "Home educated"))
SCHOOL_DAY = "school day"  # a review's deadline: the school day's start at the earliest school
SOON_MINUTES = 120
QUEUE_GROUPS = {"overdue": "Overdue", "soon": "Due within 2 hours", "later": "Due later"}
BAR_MINUTES = 12 * 60  # a full bar: half a day or more before the deadline
MAX_REASON = 500  # as the matcher keeps it
QUEUE_PAGES = 20  # of the matcher's largest pages: 10,000 open reviews shown at most
_MESSAGES = {404: "There is no such review for your local authority.",
             410: "This review's content was erased under the retention policy."}
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
_FIELD_WORDS = {key: label for label, key in _FIELDS} | {"name_order": "Name order",
                                                          "dob": "Date of birth",
                                                          "postcode": "Postcode"}


@dataclass(frozen=True)
class Countdown:
    """Time left before a deadline, in words and on a bar."""

    minutes_left: int
    text: str
    overdue: bool
    bar: int  # minutes shown on the bar, 0..BAR_MINUTES


def countdown(deadline: datetime, now: datetime, event: str | None = None) -> Countdown:
    """'1 hour 20 minutes left' or 'overdue by 5 minutes'; with an `event`, relative to it:
    'school day starts in 2 hours 10 minutes' or 'overdue: school day started 5 minutes
    ago'."""
    left = labels.minutes_until(deadline, now)
    if event is None:
        text = labels.time_left(deadline, now)
    else:
        text = ("" if left > 0 else "overdue: ") + labels.relative(deadline, now, event)
    return Countdown(left, text, left <= 0, min(max(left, 0), BAR_MINUTES))


@router.get("/reviews")
async def review_queue(request: Request) -> Response:
    """The open reviews of the officer's LAs, the nearest deadline first."""
    if await signed_in(request, "reviews:read") is None:
        return to_sign_in()
    queue: list[dict[str, Any]] = []
    path = f"/v1/reviews?limit={MAX_LIMIT}"
    for _ in range(QUEUE_PAGES):  # the matcher pages its answer: the whole queue, bounded
        answer = await _call(request, "GET", path)
        if isinstance(answer, Response):
            return answer
        queue += answer.json()
        after = answer.headers.get(NEXT_CURSOR_HEADER)
        if after is None:
            break
        path = f"/v1/reviews?limit={MAX_LIMIT}&cursor={after}"
    now = ctx_of(request).clock()
    query = dict(request.query_params)
    filters = portal_inbox.Filters.of(query, QUEUE_GROUPS)
    items = [_queued(item, now) for item in queue]
    items = [i for i in items if filters.holds(datetime.fromisoformat(i["created_at"]))]
    counts = {g: sum(i["group"] == g for i in items) for g in QUEUE_GROUPS}
    items = [i for i in items if not filters.group or i["group"] == filters.group]
    items.sort(key=lambda i: (i["deadline"] is None, i["deadline"] or now, i["created_at"]))
    # the matcher's GET /v1/reviews answers with the open reviews of the officer's LAs (no
    # child data), most urgent first, a page at a time: the portal's own page is cut here
    pages = portal_inbox.pager(portal_inbox.page_number(query.get("page")), len(items),
                               "/portal/reviews", query)
    return await page(request, "reviews.html", {
        "items": items[(pages.page - 1) * pages.size:pages.page * pages.size],
        "counts": counts, "groups": QUEUE_GROUPS, "filters": filters, "pager": pages,
        "error_title": filters.errors, "resolved": request.query_params.get("resolved"),
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
    first_choice = "choice-1" if candidates else f"choice-{OUTCOMES[0][0]}"
    still_open = detail.get("status") in (None, "open")
    summary = [{"message": e["message"], "href": ("#" + (
        first_choice if e["target"] == "choice" else "reason")) if still_open else ""}
        for e in errors]
    return await page(request, "review.html", {
        "r": detail, "candidates": candidates, "rows": comparison(detail.get("child") or {},
                                                                  candidates),
        "countdown": countdown(deadline, ctx_of(request).clock(), SCHOOL_DAY) if deadline
        else None, "explained": _explained(candidates),
        "outcomes": OUTCOMES, "errors": errors, "form": form or {},
        "summary": summary, "error_title": bool(errors),
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


def _explained(candidates: Sequence[Mapping[str, Any]]) -> list[list[dict[str, str]]]:
    """Each candidate's `explanation` from the matcher (a list of {"field", "level", "bits"}),
    in words; empty lists when the matcher gave none."""
    found = []
    for c in candidates:
        rows = []
        for item in c.get("explanation") or []:
            if not isinstance(item, Mapping):
                continue
            level = str(item.get("level") or "")
            rows.append({"field": _FIELD_WORDS.get(str(item.get("field")), labels.label(
                {}, str(item.get("field") or ""))), "level": _cell("", level)["words"],
                "mark": _cell("", level)["mark"], "bits": _bits(item.get("bits"))})
        found.append(rows)
    return found


def _bits(value: Any) -> str:
    """The weight of evidence a comparison gave, signed ('+3.2' for, '-1.5' against)."""
    try:
        return f"{float(value):+.1f}"
    except (TypeError, ValueError):
        return ""


def _cell(value: str, level: str | None) -> dict[str, str]:
    mark, words = _LEVELS.get(level or "", ("unknown", "Not compared"))
    if level and level not in _LEVELS:
        words = level.replace("_", " ").capitalize()
    return {"value": value, "mark": mark, "words": words}


def _reported(child: Mapping[str, Any], key: str) -> str:
    value = child.get(key)
    if key in ("address", "school_hint"):
        return labels.child_field(key, value) if value else ""
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
        return labels.long_date(str(value))
    if key == "gender":
        return labels.GENDERS.get(str(value), str(value))
    return str(value)


def _queued(item: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    deadline = _deadline(item)
    timer = countdown(deadline, now, SCHOOL_DAY) if deadline else None
    group = "later" if timer is None else ("overdue" if timer.overdue else (
        "soon" if timer.minutes_left <= SOON_MINUTES else "later"))
    return dict(item) | {"deadline": deadline, "countdown": timer, "group": group}


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
