"""`/portal/admin/...`: the admin's pages: forces (ingest), local authorities, schools, their
calendars and rolls (the matcher: portal_admin_registry.py), dead deliveries (the notifier's
own), and people and police clients (the identity service: portal_admin_accounts.py).

Every call carries the signed-in admin's own token to the service that owns the data, which
authorises it again; the portal keeps nothing. No page shows notification content. Every
form is a plain POST with the portal's CSRF token; the roll upload's progress bar is an
enhancement (upload.mjs), the form works without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from schemas.incidents import DISCLOSABLE_FIELDS
from services.common.problems import Problem
from services.notifier import admin_api, portal_admin_accounts, portal_admin_registry
from services.notifier.portal_admin_common import (
    FIELD_WORDS,
    FORCE,
    admin_of,
    call,
    errors_of,
    la_names,
)
from services.notifier.portal_pages import HERE, SecureRoute, checked_form, ctx_of, page, to_sign_in

router = APIRouter(prefix="/admin", route_class=SecureRoute)


@router.get("")
async def home(request: Request) -> Response:
    """What an admin keeps, one link a section."""
    if await admin_of(request) is None:
        return to_sign_in()
    return await page(request, "admin/index.html", {})


@router.get("/upload.mjs")
async def upload_script(request: Request) -> Response:
    """The roll upload's progress bar (an enhancement; the plain form works without it)."""
    return Response((HERE / "static" / "admin-upload.mjs").read_bytes(),
                    media_type="text/javascript")


@router.get("/forces")
async def forces(request: Request, code: str | None = None) -> Response:
    """Every force ingest knows, with its default LA; `?code=` opens one (or a new one)."""
    if await admin_of(request) is None:
        return to_sign_in()
    if code is not None:
        wanted = code.strip().upper()
        if FORCE.fullmatch(wanted):
            return RedirectResponse(f"/portal/admin/forces/{wanted}", status_code=303)
        return await _forces_page(request, [{"href": "#code", "message":
                                             "Enter a force code of 2 to 10 letters"}], code)
    return await _forces_page(request)


async def _forces_page(request: Request, errors: Sequence[Mapping[str, str]] = (),
                       code: str = "") -> Response:
    ctx = ctx_of(request)
    ready = (await call(request, ctx.ingest(), "GET", "/v1/admin/readiness")).json()
    # ingest's readiness names every force: those with a default LA, and those without one
    found = dict(ready.get("default_las") or {})
    for problem in ready.get("problems") or []:
        subject = str(problem.get("subject", ""))
        if subject.startswith("force:"):
            found.setdefault(subject.removeprefix("force:"), None)
    rows = [{"cells": [code_, la or "None: its reports are refused"],
             "href": f"/portal/admin/forces/{code_}", "name": code_}
            for code_, la in sorted(found.items())]
    return await page(request, "admin/list.html", {
        "title": "Police forces", "columns": ["Force", "Default local authority"],
        "rows": rows, "saved": request.query_params.get("saved"), "errors": errors,
        "error_title": bool(errors), "open": {"action": "/portal/admin/forces",
                                              "label": "Force code", "value": code,
                                              "hint": "For example, WMP"}},
        status=422 if errors else 200)


@router.get("/forces/{force_code}")
async def force(request: Request, force_code: str) -> Response:
    """One force's name, disclosure profile and default LA (a blank form for a new one)."""
    if await admin_of(request) is None:
        return to_sign_in()
    if not FORCE.fullmatch(force_code):
        raise Problem(404, "Not found", "There is no such force.")
    answer = await call(request, ctx_of(request).ingest(), "GET", f"/v1/forces/{force_code}")
    stored = answer.json() if answer.status_code == 200 else {"force_code": force_code}
    return await _force_page(request, force_code, stored)


async def _force_page(request: Request, force_code: str, values: Mapping[str, Any],
                      errors: Sequence[Mapping[str, str]] = (), status: int = 200) -> Response:
    return await page(request, "admin/force.html", {
        "code": force_code, "f": values, "fields": FIELD_WORDS, "las": await la_names(request),
        "chosen": set((values.get("disclosure_profile") or {}).get("fields") or []),
        "errors": errors, "error_title": bool(errors)}, status=status)


@router.post("/forces/{force_code}")
async def save_force(request: Request, force_code: str) -> Response:
    """Create or update the force at ingest."""
    form = await checked_form(request)
    if await admin_of(request) is None:
        return to_sign_in()
    if not FORCE.fullmatch(force_code):
        raise Problem(404, "Not found", "There is no such force.")
    fields = [f for f in DISCLOSABLE_FIELDS if form.get(f"field-{f}")]
    body: dict[str, Any] = {"name": str(form.get("name", "")).strip(),
                            "disclosure_profile": {"fields": fields}}
    if str(form.get("default_la_code", "")).strip():
        body["default_la_code"] = str(form.get("default_la_code")).strip()
    if not body["name"]:
        return await _force_page(request, force_code, body, [
            {"href": "#name", "message": "Enter the force's name"}], 422)
    answer = await call(request, ctx_of(request).ingest(), "PUT", f"/v1/forces/{force_code}",
                        json=body)
    if not answer.is_success:
        return await _force_page(request, force_code, body, errors_of(answer),
                                 answer.status_code)
    return RedirectResponse(f"/portal/admin/forces?saved={force_code}", status_code=303)


@router.get("/dead-deliveries")
async def dead_deliveries(request: Request) -> Response:
    """Webhooks and e-mails that ran out of attempts (the notifier's own list; no content)."""
    principal = await admin_of(request)
    if principal is None:
        return to_sign_in()
    dead = await admin_api.dead_deliveries(principal, ctx_of(request))
    return await page(request, "admin/dead.html", dead)


router.include_router(portal_admin_registry.router)
router.include_router(portal_admin_accounts.router)
