"""`/portal/audit`: the auditor's pages of the one portal, on the audit service's API.

Each call carries the signed-in auditor's own token, so the audit service authorises every
read and logs it (an auditor's search, export and subject-access request are entries of the
log they read); the notifier keeps nothing of the log. Auditors see these pages and nothing
else of the portal (no notification content); anyone else signed in gets a 403 page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from services.common.jwks import KeysUnavailable
from services.common.local_time import LONDON
from services.common.security import InvalidToken
from services.notifier.portal_pages import (
    SecureRoute,
    checked_form,
    ctx_of,
    page,
    session_token,
    to_sign_in,
)

router = APIRouter(route_class=SecureRoute)
PAGE_SIZE = 50
CHILD_KEY = re.compile(r"^(v2:[0-9a-f]{61}|[0-9a-f]{64})$")
URN = re.compile(r"^[0-9]{6,7}$")
MAX_NAME = 100  # as POST /v1/audit/subject-access takes them
ACTION_LABELS = {
    "notification.view": "Viewed a notification", "review.view": "Viewed a review",
    "review.candidate.view": "Viewed a review's candidate pupil",
    "review.resolve": "Resolved a review", "review.handover": "Handed a review to another LA",
    "notification.escalated": "Escalation sent with the child's details",
    "notification.retracted": "Told of a withdrawn notification",
    "notification.export": "Downloaded the notification for the school's records",
    "absence.report": "Reported the child absent to the LA",
    "attendance.prompted": "Asked the school about attendance",
    "attendance.unknown": "Told the LA attendance was not recorded",
    "audit.events.read": "Searched the audit log", "audit.events.export": "Exported the audit log",
    "audit.subject_access": "Ran a subject-access request",
    "retention.purge": "Erased content past its retention period",
    "retention.run": "Ran the retention job",
}
CHANNELS = {"api": "API", "portal": "Portal", "email": "E-mail", "webhook": "Webhook",
            "cli": "Command line", "export": "Download", "schedule": "Schedule"}
ROLES = {"dsl": "DSL", "deputy_dsl": "Deputy DSL", "la_officer": "LA officer",
         "auditor": "Auditor", "admin": "Admin", "system": "Daybreak"}
_SEARCH_FIELDS = ("school_urn", "actor", "child_key", "from", "to")


@dataclass(frozen=True)
class Search:
    """The search form as typed, the audit API's query it stands for, what is wrong with it."""

    given: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def asked(self) -> bool:
        """Whether the form was sent (the first visit shows the form alone: no read logged)."""
        return "search" in self.given


def london_midnight(day: date) -> str:
    """The UTC instant a London day starts, as the audit API's `from`/`to` take it."""
    return datetime.combine(day, time(0), LONDON).isoformat()


def search_of(params: Mapping[str, str]) -> Search:
    """The audit API's filters from the form: London days become instants (`to` inclusive)."""
    given = {k: str(params.get(k, "")).strip()[:200] for k in _SEARCH_FIELDS if k in params}
    given |= {"search": "1"} if "search" in params else {}
    query, errors = {}, []
    checks = (("school_urn", URN, "Enter a school URN of 6 or 7 digits"),
              ("child_key", CHILD_KEY, "Enter a child key as the log shows it (v2: and 61 "
               "letters and digits, or 64 of them)"))
    for key, pattern, message in checks:
        if given.get(key) and not pattern.match(given[key]):
            errors.append({"href": f"#{key}", "message": message})
        elif given.get(key):
            query[key] = given[key]
    if given.get("actor"):
        query["actor"] = given["actor"]
    days: dict[str, date] = {}
    for key, words in (("from", "From"), ("to", "Up to")):
        try:
            if given.get(key):
                days[key] = date.fromisoformat(given[key])
        except ValueError:
            errors.append({"href": f"#{key}", "message": f"{words} must be a real date, for "
                           "example 2026-12-01"})
    if "from" in days and "to" in days and days["from"] > days["to"]:
        errors.append({"href": "#to", "message": "Up to must be the same as or after from"})
    elif not errors:
        query |= {"from": london_midnight(days["from"])} if "from" in days else {}
        query |= {"to": london_midnight(days["to"] + timedelta(days=1))} if "to" in days else {}
    return Search(given, query, errors)


def event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """One log entry in people's words."""
    action, role = str(event.get("action") or ""), str(event.get("actor_role") or "")
    return dict(event) | {
        "action_words": ACTION_LABELS.get(action, action.replace(".", ": ").replace("_", " ")),
        "role_words": ROLES.get(role, role), "channel_words": CHANNELS.get(
            str(event.get("channel")), str(event.get("channel") or ""))}


async def _auditor_or_page(request: Request) -> Response | None:
    """None for a signed-in auditor; else sign-in (no session) or a 403 page (anyone else)."""
    try:
        principal = await ctx_of(request).tokens().verify(session_token(request))
    except (InvalidToken, KeysUnavailable):
        return to_sign_in()
    if principal.kind == "user" and principal.role == "auditor" and (
            "audit:read" in principal.scopes):
        return None
    return await page(request, "error.html", {
        "title": "You cannot see this page", "message": "Only auditors may use the audit log."},
        status=403)


async def _call(request: Request, method: str, path: str, **kwargs: Any
                ) -> httpx.Response | Response:
    """The audit service's answer, or the page to show instead."""
    try:
        answer = await ctx_of(request).audit().request(method, path, headers={
            "Authorization": f"Bearer {session_token(request)}"}, **kwargs)
    except httpx.HTTPError:
        return await _unavailable(request)
    if answer.status_code in (401, 403):
        return to_sign_in()
    if answer.status_code >= 500:
        return await _unavailable(request)
    return answer


@router.get("/audit")
async def events_page(request: Request) -> Response:
    """Search the log by school, actor, child key and London days; a page at a time."""
    if (refused := await _auditor_or_page(request)) is not None:
        return refused
    params = dict(request.query_params)
    search = search_of(params)
    found: dict[str, Any] = {}
    if search.asked and not search.errors:
        cursor = params.get("cursor", "")[:200]
        answer = await _call(request, "GET", "/v1/audit/events", params=search.query | (
            {"cursor": cursor} if cursor else {}) | {"limit": str(PAGE_SIZE)})
        if isinstance(answer, Response):
            return answer
        if answer.status_code == 400:
            search.errors.append({"href": "", "message": "That page of results has expired: "
                                  "search again."})
        else:
            found = answer.json()
    kept = urlencode({k: v for k, v in search.given.items() if v})
    return await page(request, "audit_events.html", {
        "search": search, "events": [event_row(e) for e in found.get("events", [])],
        "next": f"/portal/audit?{kept}&cursor={found['next_cursor']}"
        if found.get("next_cursor") else None, "kept": kept,
        "paged": bool(params.get("cursor")), "error_title": bool(search.errors)},
        status=422 if search.errors else 200)


@router.get("/audit/events.csv")
async def events_csv(request: Request) -> Response:
    """The same search as CSV, streamed from the audit service's export (audited there)."""
    if (refused := await _auditor_or_page(request)) is not None:
        return refused
    search = search_of(dict(request.query_params))
    if search.errors:
        return await page(request, "audit_events.html", {
            "search": search, "events": [], "error_title": True}, status=422)
    client = ctx_of(request).audit()
    try:
        upstream = await client.send(client.build_request(
            "GET", "/v1/audit/events.csv", params=search.query,
            headers={"Authorization": f"Bearer {session_token(request)}"}), stream=True)
    except httpx.HTTPError:
        return await _unavailable(request)
    if upstream.status_code != 200:
        await upstream.aclose()
        return to_sign_in() if upstream.status_code in (401, 403) else await _unavailable(
            request)
    return StreamingResponse(
        upstream.aiter_raw(), media_type="text/csv; charset=utf-8",
        background=BackgroundTask(upstream.aclose),
        headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'})


@router.get("/audit/verify")
async def verify_page(request: Request) -> Response:
    """Verify the hash chain and every signed tree head, and say what was found."""
    if (refused := await _auditor_or_page(request)) is not None:
        return refused
    answer = await _call(request, "GET", "/v1/audit/verify")
    if isinstance(answer, Response):
        return answer
    return await page(request, "audit_verify.html", {"v": answer.json(),
                                                     "at": ctx_of(request).clock()})


@router.get("/audit/subject-access")
async def subject_access_form(request: Request) -> Response:
    """Whose disclosures to find: the child's names and date of birth."""
    if (refused := await _auditor_or_page(request)) is not None:
        return refused
    return await page(request, "audit_subject_access.html", {"form": {}, "errors": []})


@router.post("/audit/subject-access")
async def subject_access(request: Request) -> Response:
    """Every logged disclosure about the child, as a report to print (or, with `print`, the
    report alone, laid out for paper)."""
    form = await checked_form(request)
    if (refused := await _auditor_or_page(request)) is not None:
        return refused
    typed = {k: str(form.get(k, "")).strip()[:MAX_NAME + 1] for k in (
        "given_name", "family_name", "dob-day", "dob-month", "dob-year")}
    born, errors = _subject(typed)
    if born is None:
        return await page(request, "audit_subject_access.html", {
            "form": typed, "errors": errors, "error_title": True}, status=422)
    answer = await _call(request, "POST", "/v1/audit/subject-access", json={
        "given_name": typed["given_name"], "family_name": typed["family_name"],
        "date_of_birth": born.isoformat()})
    if isinstance(answer, Response):
        return answer
    if answer.status_code != 200:
        return await page(request, "audit_subject_access.html", {
            "form": typed, "errors": [{"href": "#given_name", "message": "Check the names and "
                                       "date of birth"}], "error_title": True}, status=422)
    report = answer.json()
    return await page(request, "audit_report.html", {
        "form": typed, "born": born, "report": report, "at": ctx_of(request).clock(),
        "events": [event_row(e) for e in report.get("events", [])],
        "printing": form.get("print") == "1"})


def _subject(typed: Mapping[str, str]) -> tuple[date | None, list[dict[str, str]]]:
    """The date of birth the form gives, or what is wrong with the form."""
    errors = [{"href": f"#{key}", "message": f"Enter the child's {words} (at most {MAX_NAME} "
               "characters)"} for key, words in (("given_name", "given name"),
                                                  ("family_name", "family name"))
              if not typed[key] or len(typed[key]) > MAX_NAME]
    try:
        if len(typed["dob-year"]) != 4:
            raise ValueError("a year of four digits")
        born: date | None = date(int(typed["dob-year"]), int(typed["dob-month"]),
                                 int(typed["dob-day"]))
    except ValueError:
        born = None
        errors.append({"href": "#dob-day", "message": "Date of birth must be a real date"})
    return (None if errors else born), errors


async def _unavailable(request: Request) -> Response:
    return await page(request, "error.html", {
        "title": "The audit log is unavailable", "message": "Try again in a minute."},
        status=503, headers={"Retry-After": "5"})

