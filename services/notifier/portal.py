"""`/portal/`: the DSL's web pages: sign in, inbox, read (an audited disclosure), acknowledge."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from services.common.auth_api import SESSION_COOKIE
from services.common.context import context_in
from services.common.jwks import KeysUnavailable
from services.common.problems import Problem
from services.common.security import InvalidToken, Principal
from services.notifier import api
from services.notifier.context import NotifierContext
from services.notifier.dispatch import redeem_sign_in_link

CSRF_COOKIE = "daybreak_csrf"
ACTIONS = ("pastoral support", "education welfare officer", "school nurse", "CAMHS",
           "Early Help/CAF", "social care referral", "police", "voluntary agency",
           "no further action")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=_HERE / "templates")


class SecureRoute(APIRoute):
    """Every portal response carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            try:
                response = await handler(request)
            except Problem as exc:
                response = await _problem_page(request, exc)
            response.headers.update(SECURITY_HEADERS)
            return response

        return secured


router = APIRouter(prefix="/portal", tags=["portal"], route_class=SecureRoute,
                   include_in_schema=False)


@router.get("/static/portal.css")
async def stylesheet() -> Response:
    """The portal's only stylesheet (no inline styles, no scripts)."""
    return Response((_HERE / "static" / "portal.css").read_bytes(), media_type="text/css")


@router.get("/sign-in")
async def sign_in_page(request: Request, token: str | None = None) -> Response:
    """The sign-in form; an e-mailed `?token=` is redeemed first and taken out of the URL."""
    if token:
        return await _redeem(request, token)
    return await _page(request, "sign_in.html", {"link": request.query_params.get("link")})


@router.get("/link/{token}")
async def sign_in_link(request: Request, token: str) -> Response:
    """A single-use e-mailed link: never signs anyone in, only leads to the sign-in form."""
    return await _redeem(request, token)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Password + TOTP → the session cookie and the inbox; failures are generic and throttled."""
    form = await _checked_form(request)
    ctx = _ctx(request)
    email, password, code = (str(form.get(k, ""))[:1024] for k in ("email", "password", "totp"))
    try:
        # the identity service checks the password and code and counts failures, as it does
        # for POST /v1/sessions: the portal holds no accounts
        answer = await ctx.identity().post("/v1/sessions", json={
            "email": email[:320], "password": password, "totp": code})
    except httpx.HTTPError:
        return await _sign_in_unavailable(request)
    if answer.status_code == 429:
        return await _page(request, "error.html", {"title": "Too many sign-in attempts",
                                                   "message": "Wait a while, then try again."},
                           status=429, headers={"Retry-After": "60"})
    if answer.status_code in (401, 422):  # 422: a code that is not six digits, also wrong
        return await _page(request, "sign_in.html", {"error": True, "email": email},
                           status=401)
    if answer.status_code != 200:
        return await _sign_in_unavailable(request)
    session = answer.json()
    response = RedirectResponse("/portal/", status_code=303)
    response.set_cookie(SESSION_COOKIE, session["access_token"], max_age=session["expires_in"],
                        httponly=True, secure=ctx.settings.cookie_secure, samesite="strict",
                        path="/")
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """Forget the session cookie."""
    await _checked_form(request)
    response = RedirectResponse("/portal/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True,
                           secure=_ctx(request).settings.cookie_secure, samesite="strict")
    return response


@router.get("/")
async def inbox(request: Request) -> Response:
    """The user's school(s)' notifications, newest first; no child data."""
    principal = await _principal(request)
    if principal is None:
        return _to_sign_in()
    listed = await api.list_notifications(principal, _ctx(request))
    return await _page(request, "inbox.html", {
        "items": listed["items"], "acknowledged": request.query_params.get("acknowledged")})


@router.get("/notifications/{notification_id}")
async def notification(request: Request, notification_id: str) -> Response:
    """One notification's details: an audited disclosure (channel "portal")."""
    principal = await _principal(request)
    if principal is None:
        return _to_sign_in()
    try:
        details = await api.view_notification(
            _ctx(request), uuid.UUID(notification_id), principal, channel="portal")
    except (ValueError, Problem) as exc:
        return await _problem_page(request, exc)
    return await _page(request, "notification.html", {"n": details, "actions": ACTIONS})


@router.post("/notifications/{notification_id}/acknowledge")
async def acknowledge(request: Request, notification_id: str) -> Response:
    """Acknowledge with the action taken and whether the child attended this morning."""
    form = await _checked_form(request)
    principal = await _principal(request)
    if principal is None:
        return _to_sign_in()
    action, attended = str(form.get("action_taken", "")), str(form.get("attended", ""))
    if action not in ACTIONS or attended not in ("yes", "no"):
        return await _page(request, "error.html", {
            "title": "Acknowledgement not recorded", "back": notification_id,
            "message": "Choose the action taken and whether the child attended."}, status=422)
    body = api.AcknowledgeIn(action_taken=action, attended=attended == "yes")
    try:
        if "notifications:ack" not in principal.scopes:
            raise Problem(403, "Forbidden", "Your account may not acknowledge notifications.")
        await api.acknowledge_notification(
            _ctx(request), uuid.UUID(notification_id), body, principal, channel="portal")
    except (ValueError, Problem) as exc:
        return await _problem_page(request, exc)
    return RedirectResponse("/portal/?acknowledged=1", status_code=303)


async def _redeem(request: Request, token: str) -> Response:
    ctx = _ctx(request)
    async with ctx.uow() as uow:
        link = await redeem_sign_in_link(uow.conn, token[:200], now=ctx.clock())
        await uow.commit()
    # the token leaves the address bar (and history) at once
    return RedirectResponse(f"/portal/sign-in?link={'ok' if link else 'expired'}",
                            status_code=303)


def _ctx(request: Request) -> NotifierContext:
    return context_in(request, NotifierContext)


async def _principal(request: Request) -> Principal | None:
    """The signed-in person, from the session cookie; None when absent, expired or not a DSL."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = await _ctx(request).tokens().verify(token)
    except (InvalidToken, KeysUnavailable):
        return None
    ok = principal.kind == "user" and "notifications:read" in principal.scopes
    return principal if ok else None


async def _checked_form(request: Request) -> Mapping[str, Any]:
    """The posted form, after the double-submit CSRF check (403 on a mismatch)."""
    form = await request.form()
    cookie, field = request.cookies.get(CSRF_COOKIE, ""), str(form.get("csrf", ""))
    if not cookie or not secrets.compare_digest(cookie.encode(), field.encode()):
        raise Problem(403, "Forbidden", "The form expired; reload the page and try again.")
    return form


async def _page(request: Request, name: str, context: dict[str, Any], *, status: int = 200,
                headers: dict[str, str] | None = None) -> Response:
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    signed_in = await _principal(request) is not None
    response = templates.TemplateResponse(
        request, name, context | {"csrf": csrf, "signed_in": signed_in},
        status_code=status, headers=headers)
    if request.cookies.get(CSRF_COOKIE) != csrf:
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/portal",
                            secure=_ctx(request).settings.cookie_secure)
    return response


async def _problem_page(request: Request, exc: Exception) -> Response:
    status, title = (exc.status, exc.title) if isinstance(exc, Problem) else (404, "Not found")
    messages = {404: "There is no such notification for your school.",
                409: "This notification cannot be acknowledged now."}
    message = messages.get(status) or (exc.detail if isinstance(exc, Problem) else None) or ""
    return await _page(request, "error.html", {"title": title, "message": message},
                       status=status)


async def _sign_in_unavailable(request: Request) -> Response:
    return await _page(request, "error.html", {
        "title": "Sign-in is unavailable", "message": "Try again in a minute."},
        status=503, headers={"Retry-After": "5"})


def _to_sign_in() -> Response:
    return RedirectResponse("/portal/sign-in", status_code=303)
