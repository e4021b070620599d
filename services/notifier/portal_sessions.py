"""`/portal/sessions`: a person's own sessions (ASVS 7.5.2). The page lists where they are
signed in (the identity service's `GET /v1/sessions`, called with their own token) and lets
them sign out of any one of them, or of every one but this, each after their password and a
new code are asked again (`POST /v1/sessions/{sid}/end`, `POST /v1/sessions/end-others`):
the identity service checks them, throttles them as it does sign-ins and records the end."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.common.paging import MAX_LIMIT
from services.common.problems import Problem
from services.common.relay import origin_of
from services.notifier.portal_pages import (
    SecureRoute,
    checked_form,
    ctx_of,
    end_session,
    page,
    principal_of,
    session_token,
    to_sign_in,
)

router = APIRouter(route_class=SecureRoute)
HOME = "/portal/sessions"
OTHERS = "others"  # the path's word for "every session but this one"
_CODE = re.compile(r"[0-9]{6}")
_DONE = {"one": "You signed out of that session.",
         "others": "You signed out everywhere else."}
_WRONG = {"href": "#password", "message": "The password or code is wrong. Enter your password "
          "and a new code from your authenticator app."}


async def _identity(request: Request, method: str, path: str, *,
                    json: Mapping[str, str] | None = None,
                    params: Mapping[str, str] | None = None) -> httpx.Response:
    """The identity service's answer to the person's own token; a Problem (an error page)
    when it is away."""
    headers = {"Authorization": f"Bearer {session_token(request)}"} | origin_of(request)
    try:
        answer = await ctx_of(request).identity().request(method, path, json=json,
                                                         params=params, headers=headers)
    except httpx.HTTPError:
        raise Problem(503, "Service unavailable", "Try again in a minute.") from None
    if answer.status_code >= 500:
        raise Problem(503, "Service unavailable", "Try again in a minute.",
                      headers={"Retry-After": answer.headers.get("retry-after", "5")})
    return answer


async def _sessions(request: Request, cursor: str | None = None
                    ) -> tuple[list[dict[str, Any]], str | None] | None:
    """A page of the person's sessions and the next page's cursor; None when their own
    session has ended (they sign in again)."""
    params = {"limit": str(MAX_LIMIT)} | ({"cursor": cursor} if cursor else {})
    answer = await _identity(request, "GET", "/v1/sessions", params=params)
    if answer.status_code in (401, 403):
        return None
    if answer.status_code != 200:
        raise Problem(404, "Not found", "There is no such page of your sessions.")
    body = answer.json()
    return list(body["items"]), body.get("next_cursor")


@router.get("/sessions")
async def sessions_page(request: Request, cursor: str | None = None,
                        done: str | None = None) -> Response:
    """Where the person is signed in now, this session marked, each with its sign-out."""
    if await principal_of(request) is None:
        return to_sign_in()
    listed = await _sessions(request, cursor)
    if listed is None:
        return to_sign_in()
    items, next_cursor = listed
    return await page(request, "sessions.html", {
        "sessions": items, "next_cursor": next_cursor, "done": _DONE.get(done or ""),
        "others": any(not s["current"] for s in items) or next_cursor is not None})


@router.get("/sessions/{sid}/end")
async def confirm_page(request: Request, sid: str) -> Response:
    """The question before a sign-out: the session (or "everywhere else") and the password
    and code; `sid` "others" for every session but this one."""
    if await principal_of(request) is None:
        return to_sign_in()
    found = await _chosen(request, sid)
    if isinstance(found, Response):
        return found
    return await _form(request, sid, found, [])


@router.post("/sessions/{sid}/end")
async def end(request: Request, sid: str) -> Response:
    """Sign out of the session (or everywhere else) once the password and code are right;
    signing out of this very session signs the person out here too."""
    form = await checked_form(request)
    if await principal_of(request) is None:
        return to_sign_in()
    found = await _chosen(request, sid)
    if isinstance(found, Response):
        return found
    password, code = str(form.get("password", ""))[:1024], str(form.get("totp", "")).strip()
    errors = ([] if password else [{"href": "#password", "message": "Enter your password"}]) + (
        [] if _CODE.fullmatch(code) else [{"href": "#totp", "message": "Enter the 6-digit code "
                                           "from your authenticator app"}])
    if errors:
        return await _form(request, sid, found, errors, status=422)
    path = "/v1/sessions/end-others" if sid == OTHERS else f"/v1/sessions/{sid}/end"
    answer = await _identity(request, "POST", path, json={"password": password, "totp": code})
    if answer.status_code == 429:
        return await page(request, "error.html", {
            "title": "Too many attempts", "message": "Wait a while, then try again."},
            status=429, headers={"Retry-After": answer.headers.get("retry-after", "60")})
    if answer.status_code in (403, 422):
        return await _form(request, sid, found, [_WRONG], status=403)
    if answer.status_code == 401:
        return to_sign_in()
    if answer.status_code == 404:
        return await _gone(request)
    if found is not None and found["current"]:
        response = RedirectResponse("/portal/sign-in", status_code=303)
        end_session(request, response)
        return response
    return RedirectResponse(f"{HOME}?done={'others' if sid == OTHERS else 'one'}",
                            status_code=303)


async def _chosen(request: Request, sid: str) -> dict[str, Any] | Response | None:
    """The session `sid` names among the person's (None for "others"), or the page to
    answer with: sign in again, or "no such session"."""
    if sid != OTHERS:
        try:
            sid = str(uuid.UUID(sid))
        except ValueError:
            return await _gone(request)
    listed = await _sessions(request)
    if listed is None:
        return to_sign_in()
    if sid == OTHERS:
        return None
    found = next((s for s in listed[0] if s["id"] == sid), None)
    return found if found is not None else await _gone(request)


async def _gone(request: Request) -> Response:
    return await page(request, "error.html", {
        "title": "Not found", "message": "You have no such session now: it may "
        "have ended already."}, status=404)


async def _form(request: Request, sid: str, session: dict[str, Any] | None,
                errors: list[dict[str, str]], *, status: int = 200) -> Response:
    return await page(request, "session_end.html", {
        "sid": sid, "session": session, "errors": errors, "error_title": bool(errors),
        "bad": {e["href"].lstrip("#"): e["message"] for e in errors}}, status=status)
