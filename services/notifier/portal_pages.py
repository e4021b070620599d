"""What every page of the one portal for people shares: the session, the navigation, CSRF,
security headers and rendering. The words people read (London times, labels, not codes) are
portal_labels.py's, reached from the templates as filters.

One portal, one origin (the notifier's `/portal/`), one session: the cookie holds the
person's own EdDSA token from the identity service, whose `aud` names every service their
role uses. People's casework (notifications, acknowledgements, attendance) lives here in
the notifier; other services' pages call those services' APIs with that same token, so each
service still authorises and audits every read itself (the LA's review pages call the
matcher: services/notifier/portal_reviews.py) and the notifier never holds their data.

Auditor and admin pages join the same way: a `NavItem` for their scope below, a router of
pages on the service's API (the audit service's for auditors), and the role's token audience
(services/common/security.ROLE_AUDIENCES) extended to name the notifier, whose portal then
admits them. The navigation is built from the signed-in person's scopes, so each person sees
only what they may use, and every page extends the one base template.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from services.common.auth_api import (
    SESSION_COOKIE,
    clear_host_cookie,
    host_cookie,
    session_cookie,
    set_host_cookie,
)
from services.common.context import context_in
from services.common.jwks import KeysUnavailable
from services.common.problems import Problem
from services.common.relay import origin_of
from services.common.security import InvalidToken, Principal
from services.notifier import portal_labels as labels
from services.notifier.context import NotifierContext

# `__Host-` prefixed when cookie_secure is on, like the session's (services/common/auth_api)
CSRF_COOKIE = "__Host-daybreak_csrf"
# scripts: only the page's own, same-origin, by the nonce of that response (see `page`)
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src {scripts}; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP.format(scripts="'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
HERE = Path(__file__).parent  # templates/ and static/
templates = Jinja2Templates(directory=HERE / "templates")


@dataclass(frozen=True)
class NavItem:
    """A portal section, shown to whoever holds its scope."""

    label: str
    href: str
    scope: str
    roles: tuple[str, ...] = ()  # only these roles (none: whoever holds the scope)

    def for_(self, principal: Principal | None) -> bool:
        """Whether this person sees the section."""
        return principal is not None and self.scope in principal.scopes and (
            not self.roles or principal.role in self.roles)


NAV = (
    NavItem("Notifications", "/portal/", "notifications:read"),
    NavItem("Open items", "/portal/open-items", "notifications:read", ("la_officer",)),
    NavItem("Review queue", "/portal/reviews", "reviews:read"),
    NavItem("Figures", "/portal/partnership", "figures:read"),
    NavItem("Partner directory", "/portal/partners", "notifications:read", ("la_officer",)),
    NavItem("Audit log", "/portal/audit", "audit:read", ("auditor",)),
    NavItem("Verify the log", "/portal/audit/verify", "audit:read", ("auditor",)),
    NavItem("Subject access", "/portal/audit/subject-access", "audit:read", ("auditor",)),
    NavItem("Admin", "/portal/admin", "admin"),
)


for _name, _filter in {
        "when": labels.time_tag, "london": labels.london_time, "long_date": labels.long_date,
        "tag": labels.tag, "child_field": labels.child_field, "attended": labels.attended,
        "school": labels.school, "state_label": lambda s: labels.label(labels.STATE_LABELS, s),
        "role_label": lambda r: labels.label(labels.ROLE_LABELS, r),
        "reason_label": lambda r: labels.label(labels.REASON_LABELS, r),
        "incident_type": lambda t: labels.label(labels.INCIDENT_TYPES, t),
        "field_label": lambda f: labels.label(labels.CHILD_FIELDS, f),
        "need_label": lambda t: labels.label(labels.NEED_LABELS, t),
        "action_label": lambda t: labels.label(labels.ACTION_LABELS, t),
        "phone_href": labels.phone_href,
        "sentence": lambda words: words[:1].upper() + words[1:]}.items():
    templates.env.filters[_name] = _filter


class SecureRoute(APIRoute):
    """Every portal response carries the security headers; a Problem becomes an error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            try:
                response = await handler(request)
            except Problem as exc:
                response = await problem_page(request, exc)
            response.headers.update(SECURITY_HEADERS)
            nonce = getattr(request.state, "script_nonce", None)
            if nonce:
                response.headers["Content-Security-Policy"] = CSP.format(
                    scripts=f"'nonce-{nonce}'")
            return response

        return secured


def ctx_of(request: Request) -> NotifierContext:
    """The notifier's context."""
    return context_in(request, NotifierContext)


async def person_of(request: Request, token: str | None) -> Principal | None:
    """The person a session token names; None when absent, invalid, expired or revoked, or
    when it is a police client's."""
    if not token:
        return None
    try:
        principal = await ctx_of(request).tokens().verify(token)
    except (InvalidToken, KeysUnavailable):
        return None
    return principal if principal.kind == "user" else None


async def principal_of(request: Request) -> Principal | None:
    """The signed-in person, from the session cookie; None when absent, expired, or holding
    no scope the portal has pages for."""
    principal = await person_of(request, session_token(request))
    ok = principal is not None and any(item.scope in principal.scopes for item in NAV)
    return principal if ok else None


async def signed_in(request: Request, scope: str) -> Principal | None:
    """The signed-in person if they hold `scope` (else None: the page sends them to sign in)."""
    principal = await principal_of(request)
    return principal if principal is not None and scope in principal.scopes else None


def session_token(request: Request) -> str:
    """The signed-in person's own token, for calls to the other services' APIs."""
    return request.cookies.get(session_cookie(ctx_of(request).settings), "")


def csrf_cookie(request: Request) -> str:
    """The CSRF cookie's name here."""
    return host_cookie(ctx_of(request).settings, CSRF_COOKIE)


def start_session(request: Request, response: Response, token: str, max_age: int) -> None:
    """Signed in: the session cookie, and a new CSRF token (none known before sign-in, a
    planted one included, stays valid after it)."""
    settings = ctx_of(request).settings
    set_host_cookie(response, settings, SESSION_COOKIE, token, max_age=max_age)
    set_host_cookie(response, settings, CSRF_COOKIE, secrets.token_urlsafe(32))


def end_session(request: Request, response: Response) -> None:
    """Signed out: both cookies forgotten."""
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        clear_host_cookie(response, ctx_of(request).settings, name)


@dataclass(frozen=True)
class Session:
    """What the identity service gave for a sign-in: the person's token and its lifetime."""

    token: str
    expires_in: int


async def signed_in_by(request: Request, form: Mapping[str, Any], *,
                       again: Mapping[str, Any] | None = None) -> Session | Response:
    """Sign in with the form's email, password and code (the identity service checks them and
    counts failures, as for POST /v1/sessions: the portal holds no accounts); else the page to
    answer with: the sign-in form again (with `again` in its context), or why not."""
    email, password, code = (str(form.get(k, ""))[:1024] for k in ("email", "password", "totp"))
    try:
        # with who is signing in (their address, for identity's throttling): never trusted
        # from the caller, only from this relay
        answer = await ctx_of(request).identity().post("/v1/sessions", json={
            "email": email[:320], "password": password, "totp": code},
            headers=origin_of(request))
    except httpx.HTTPError:
        answer = None
    if answer is not None and answer.status_code == 429:
        return await page(request, "error.html", {"title": "Too many sign-in attempts",
                                                  "message": "Wait a while, then try again."},
                          status=429, headers={"Retry-After": "60"})
    if answer is not None and answer.status_code in (401, 422):  # 422: a code not 6 digits
        return await page(request, "sign_in.html", {
            "error": True, "error_title": True, "email": email, **(again or {})}, status=401)
    if answer is None or answer.status_code != 200:
        return await page(request, "error.html", {
            "title": "Sign-in is unavailable", "message": "Try again in a minute."},
            status=503, headers={"Retry-After": "5"})
    body = answer.json()
    return Session(str(body["access_token"]), int(body["expires_in"]))


async def checked_form(request: Request) -> Mapping[str, Any]:
    """The posted form, after the double-submit CSRF check (403 on a mismatch)."""
    form = await request.form()
    cookie, field = request.cookies.get(csrf_cookie(request), ""), str(form.get("csrf", ""))
    if not cookie or not secrets.compare_digest(cookie.encode(), field.encode()):
        raise Problem(403, "Forbidden", "The form expired; reload the page and try again.")
    return form


async def page(request: Request, name: str, context: dict[str, Any], *, status: int = 200,
               headers: dict[str, str] | None = None) -> Response:
    """A page from the base template, with the navigation the person's scopes allow."""
    csrf = request.cookies.get(csrf_cookie(request)) or secrets.token_urlsafe(32)
    nonce = request.state.script_nonce = secrets.token_urlsafe(16)
    principal = await principal_of(request)
    nav = [{"label": i.label, "href": i.href, "current": _current(request.url.path, i.href)}
           for i in NAV if i.for_(principal)]
    response = templates.TemplateResponse(
        request, name, context | {"csrf": csrf, "signed_in": principal is not None,
                                  "nav": nav, "principal": principal, "nonce": nonce,
                                  "path": request.url.path},
        status_code=status, headers=headers)
    if request.cookies.get(csrf_cookie(request)) != csrf:
        set_host_cookie(response, ctx_of(request).settings, CSRF_COOKIE, csrf)
    return response


async def problem_page(request: Request, exc: Exception,
                       messages: Mapping[int, str] | None = None) -> Response:
    """An error page for a Problem (a malformed id is a 404), with words for its status."""
    status, title = (exc.status, exc.title) if isinstance(exc, Problem) else (404, "Not found")
    words = {404: "There is no such notification for your school.",
             409: "This notification cannot be acknowledged now."} | dict(messages or {})
    message = words.get(status) or (exc.detail if isinstance(exc, Problem) else None) or ""
    return await page(request, "error.html", {"title": title, "message": message},
                      status=status)


async def home_of(request: Request, token: str) -> str:
    """Where a person lands after signing in: the first section their token's scopes open."""
    try:
        principal = await ctx_of(request).tokens().verify(token)
    except (InvalidToken, KeysUnavailable):
        return "/portal/"
    return next((i.href for i in NAV if i.for_(principal)), "/portal/")


async def elsewhere(request: Request) -> Response | None:
    """For a signed-in person without notifications (an admin), their first section: the
    inbox's sign-in redirect then lands them there; None for everyone else."""
    principal = await principal_of(request)
    if principal is None or "notifications:read" in principal.scopes:
        return None
    home = next(i.href for i in NAV if i.for_(principal))
    return RedirectResponse(home, status_code=303)


def to_sign_in() -> Response:
    """Off to the sign-in form (no session, or not one for this page)."""
    return RedirectResponse("/portal/sign-in", status_code=303)


def _current(path: str, href: str) -> bool:
    if href == "/portal/":
        return path == href or path.startswith("/portal/notifications/")
    return path == href or path.startswith(href + "/")
