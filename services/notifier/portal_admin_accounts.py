"""`/portal/admin/users` and `/portal/admin/clients`: people and police clients on the identity
service's admin API, with the admin's own token. A new password, TOTP enrolment or client
secret is shown once, on the page that answers the POST (no-store, never in a URL)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pyotp
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.common.security import ROLES
from services.notifier.portal_admin_common import admin_of, call, errors_of
from services.notifier.portal_pages import SecureRoute, checked_form, ctx_of, page, to_sign_in

router = APIRouter(route_class=SecureRoute)
ROLE_WORDS = {"dsl": "Designated safeguarding lead", "deputy_dsl": "Deputy DSL",
              "la_officer": "Local authority officer", "auditor": "Auditor", "admin": "Admin"}
USER_ACTIONS = {"disable": "disabled", "enable": "enabled"}
CLIENT_ACTIONS = {"disable": "disabled", "enable": "enabled"}
_FIELD_IDS = {"email": "email", "role": "role", "school_urns": "school_urns",
              "la_codes": "la_codes", "force_code": "force_code"}
_SEPARATORS = re.compile(r"[\s,;]+")


def _codes(text: str) -> list[str]:
    return [c.upper() for c in _SEPARATORS.split(text.strip()) if c][:100]


def _account_errors(answer: Any) -> list[dict[str, str]]:
    """The identity service's refusal, linked to the form's fields where it names one."""
    found = errors_of(answer, _FIELD_IDS)
    words = " ".join(e["message"] for e in found).lower()
    first = next((f for f in ("school", "la", "email", "role", "force") if f in words), "")
    target = {"school": "school_urns", "la": "la_codes", "force": "force_code"}.get(first, first)
    return [e | {"href": e["href"] or (f"#{target}" if target else "")} for e in found]


@router.get("/users")
async def users(request: Request, cursor: str | None = None) -> Response:
    """People by e-mail address, a page at a time, each with what may be done to them; and
    the form to add one."""
    if await admin_of(request) is None:
        return to_sign_in()
    return await _users_page(request, cursor)


async def _users_page(request: Request, cursor: str | None, *,
                      errors: Sequence[Mapping[str, str]] = (),
                      form: Mapping[str, str] | None = None, status: int = 200) -> Response:
    params = {"limit": "50"} | ({"cursor": cursor[:500]} if cursor else {})
    answer = await call(request, ctx_of(request).identity(), "GET", "/v1/users", params=params)
    listed = answer.json() if answer.is_success else {"users": [], "next_cursor": None}
    return await page(request, "admin/users.html", {
        "users": listed["users"], "next": listed.get("next_cursor"), "first": not cursor,
        "roles": {r: ROLE_WORDS.get(r, r) for r in ROLES}, "done": request.query_params.get(
            "done"), "errors": errors, "error_title": bool(errors), "form": form or {}},
        status=status)


@router.post("/users")
async def create_user(request: Request) -> Response:
    """Add a person; their one-time password and TOTP enrolment are shown once."""
    form = await checked_form(request)
    if await admin_of(request) is None:
        return to_sign_in()
    kept = {k: str(form.get(k, "")).strip() for k in ("email", "role", "school_urns",
                                                        "la_codes")}
    answer = await call(request, ctx_of(request).identity(), "POST", "/v1/users", json={
        "email": kept["email"], "role": kept["role"], "school_urns": _codes(
            kept["school_urns"]), "la_codes": _codes(kept["la_codes"])})
    if not answer.is_success:
        return await _users_page(request, None, errors=_account_errors(answer), form=kept,
                                 status=answer.status_code)
    made = answer.json()
    return await _shown_once(request, "Account created", made["email"],
                             password=made["password"], totp_uri=made["totp_uri"])


async def _user_action(request: Request, user_id: str, action: str) -> Response:
    await checked_form(request)
    if await admin_of(request) is None:
        return to_sign_in()
    answer = await call(request, ctx_of(request).identity(), "POST",
                        f"/v1/users/{user_id[:64]}/{action}")
    if not answer.is_success:
        return await _users_page(request, None, errors=errors_of(answer),
                                 status=answer.status_code)
    body = answer.json()
    if action in USER_ACTIONS:
        return RedirectResponse(f"/portal/admin/users?done={USER_ACTIONS[action]}",
                                status_code=303)
    return await _shown_once(request, "New password" if "password" in body else
                             "New two-factor code", body["user"]["email"],
                             password=body.get("password"), totp_uri=body.get("totp_uri"))


@router.post("/users/{user_id}/disable")
async def disable_user(request: Request, user_id: str) -> Response:
    """Disable a person (no more sign-ins)."""
    return await _user_action(request, user_id, "disable")


@router.post("/users/{user_id}/enable")
async def enable_user(request: Request, user_id: str) -> Response:
    """Enable a disabled person again."""
    return await _user_action(request, user_id, "enable")


@router.post("/users/{user_id}/reset-password")
async def reset_password(request: Request, user_id: str) -> Response:
    """A new one-time password for a person, shown once."""
    return await _user_action(request, user_id, "reset-password")


@router.post("/users/{user_id}/reenrol-totp")
async def reenrol_totp(request: Request, user_id: str) -> Response:
    """A new TOTP enrolment for a person, shown once."""
    return await _user_action(request, user_id, "reenrol-totp")


@router.get("/clients")
async def clients(request: Request) -> Response:
    """Every police client, by force, and the form to add one."""
    if await admin_of(request) is None:
        return to_sign_in()
    return await _clients_page(request)


async def _clients_page(request: Request, *, errors: Sequence[Mapping[str, str]] = (),
                        force_code: str = "", status: int = 200) -> Response:
    answer = await call(request, ctx_of(request).identity(), "GET", "/v1/clients")
    return await page(request, "admin/clients.html", {
        "clients": answer.json()["clients"] if answer.is_success else [],
        "done": request.query_params.get("done"), "errors": errors,
        "error_title": bool(errors), "force_code": force_code}, status=status)


@router.post("/clients")
async def create_client(request: Request) -> Response:
    """Add a police client for a force; its secret is shown once."""
    form = await checked_form(request)
    if await admin_of(request) is None:
        return to_sign_in()
    force = str(form.get("force_code", "")).strip()
    answer = await call(request, ctx_of(request).identity(), "POST", "/v1/clients",
                        json={"force_code": force})
    if not answer.is_success:
        return await _clients_page(request, errors=_account_errors(answer), force_code=force,
                                   status=answer.status_code)
    made = answer.json()
    return await _shown_once(request, "Police client created", made["client_id"],
                             client_secret=made["client_secret"])


async def _client_action(request: Request, client_id: str, action: str) -> Response:
    await checked_form(request)
    if await admin_of(request) is None:
        return to_sign_in()
    answer = await call(request, ctx_of(request).identity(), "POST",
                        f"/v1/clients/{client_id[:64]}/{action}")
    if not answer.is_success:
        return await _clients_page(request, errors=errors_of(answer),
                                   status=answer.status_code)
    if action in CLIENT_ACTIONS:
        return RedirectResponse(f"/portal/admin/clients?done={CLIENT_ACTIONS[action]}",
                                status_code=303)
    body = answer.json()
    return await _shown_once(request, "New client secret", body["client_id"],
                             client_secret=body["client_secret"])


@router.post("/clients/{client_id}/disable")
async def disable_client(request: Request, client_id: str) -> Response:
    """Disable a police client (no more tokens)."""
    return await _client_action(request, client_id, "disable")


@router.post("/clients/{client_id}/enable")
async def enable_client(request: Request, client_id: str) -> Response:
    """Enable a disabled police client again."""
    return await _client_action(request, client_id, "enable")


@router.post("/clients/{client_id}/rotate-secret")
async def rotate_secret(request: Request, client_id: str) -> Response:
    """A new secret for a police client, shown once; the old one stops working."""
    return await _client_action(request, client_id, "rotate-secret")


async def _shown_once(request: Request, title: str, whom: str, *, password: str | None = None,
                      totp_uri: str | None = None, client_secret: str | None = None
                      ) -> Response:
    """The one page that shows a new secret (its response is no-store, like every page)."""
    setup_key = pyotp.parse_uri(totp_uri).secret if totp_uri else None
    back = "/portal/admin/clients" if client_secret else "/portal/admin/users"
    return await page(request, "admin/secret.html", {
        "title": title, "whom": whom, "password": password, "totp_uri": totp_uri,
        "setup_key": setup_key, "client_secret": client_secret, "back": back})
