"""`/portal/admin/local-authorities` and `/portal/admin/schools`: the registry on the
matcher's API (details, contacts, term dates and calendars, rolls), with the admin's own token.
The lists come from the notifier's own registry copy; each page reads and writes the
matcher's. A roll's row errors come back as an error summary naming each row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from services.common.problems import Problem
from services.notifier import portal_inbox
from services.notifier.models import local_authorities, schools
from services.notifier.portal_admin_common import (
    LA,
    LA_ROLES,
    SCHOOL_ROLES,
    URN,
    admin_of,
    call,
    contact_rows,
    contacts_of,
    errors_of,
    la_names,
    missing_file,
    upload_of,
)
from services.notifier.portal_pages import SecureRoute, checked_form, ctx_of, page, to_sign_in

router = APIRouter(route_class=SecureRoute)
_NO_LA = "Enter a local authority code of up to 8 letters or digits"
_NO_URN = "Enter a URN of 6 or 7 digits"


@router.get("/local-authorities")
async def local_authority_list(request: Request, code: str | None = None) -> Response:
    """Every LA the notifier knows; `?code=` opens one (or a new one)."""
    if await admin_of(request) is None:
        return to_sign_in()
    errors: list[dict[str, str]] = []
    if code is not None:
        if LA.fullmatch(code.strip().upper()):
            return RedirectResponse(f"/portal/admin/local-authorities/{code.strip().upper()}",
                                    status_code=303)
        errors = [{"href": "#code", "message": _NO_LA}]
    la = local_authorities.c
    async with ctx_of(request).engine.connect() as conn:
        rows = (await conn.execute(select(la.la_code, la.name, la.contacts)
                                   .order_by(la.la_code))).all()
    return await page(request, "admin/list.html", {
        "title": "Local authorities", "columns": ["Local authority", "Code", "Contacts"],
        "rows": [{"cells": [r.name, r.la_code, str(len(r.contacts or []))], "name": r.name,
                  "href": f"/portal/admin/local-authorities/{r.la_code}"} for r in rows],
        "saved": request.query_params.get("saved"), "errors": errors,
        "error_title": bool(errors), "open": {
            "action": "/portal/admin/local-authorities", "label": "Local authority code",
            "value": code or "", "hint": "For example, 332"}}, status=422 if errors else 200)


@router.get("/local-authorities/{la_code}")
async def local_authority(request: Request, la_code: str) -> Response:
    """An LA's name and contacts, and its term dates upload (a blank form for a new one)."""
    if await admin_of(request) is None:
        return to_sign_in()
    return await _la_page(request, _la_code(la_code), await _stored_la(request, la_code))


@router.post("/local-authorities/{la_code}")
async def save_local_authority(request: Request, la_code: str) -> Response:
    """Create or replace the LA at the matcher (its escalation settings are kept)."""
    form = await checked_form(request)
    if await admin_of(request) is None:
        return to_sign_in()
    code = _la_code(la_code)
    body = {"name": str(form.get("name", "")).strip(), "contacts": contacts_of(form, LA_ROLES)}
    if not body["name"]:
        return await _la_page(request, code, body, [
            {"href": "#name", "message": "Enter the local authority's name"}], 422)
    answer = await call(request, ctx_of(request).matcher(), "PUT",
                        f"/v1/local-authorities/{code}", json=body)
    if not answer.is_success:
        return await _la_page(request, code, body, errors_of(answer), answer.status_code)
    return RedirectResponse(f"/portal/admin/local-authorities?saved={code}", status_code=303)


@router.post("/local-authorities/{la_code}/calendar")
async def la_calendar(request: Request, la_code: str) -> Response:
    """Replace the LA's term dates with an iCalendar file or a `date,kind` CSV."""
    _, body, media_type = await upload_of(request)
    if await admin_of(request) is None:
        return to_sign_in()
    code = _la_code(la_code)
    stored = await _stored_la(request, code)
    if body is None:
        return await _la_page(request, code, stored, missing_file(), 422)
    answer = await call(request, ctx_of(request).matcher(), "PUT",
                        f"/v1/local-authorities/{code}/calendar", content=body,
                        media_type=media_type)
    if not answer.is_success:
        return await _la_page(request, code, stored, errors_of(answer, {"": "file"}),
                              answer.status_code)
    done = answer.json()
    return await _la_page(request, code, stored, done=f"Term dates replaced: {done['days']} "
                          f"days, followed by {done['schools_affected']} schools.")


async def _stored_la(request: Request, la_code: str) -> Mapping[str, Any]:
    code = _la_code(la_code)
    answer = await call(request, ctx_of(request).matcher(), "GET",
                        f"/v1/local-authorities/{code}")
    return answer.json() if answer.status_code == 200 else {}


async def _la_page(request: Request, code: str, values: Mapping[str, Any],
                   errors: Sequence[Mapping[str, str]] = (), status: int = 200,
                   done: str | None = None) -> Response:
    return await page(request, "admin/local_authority.html", {
        "code": code, "la": values, "known": bool(values.get("la_code")),
        "contacts": contact_rows(values.get("contacts") or []), "roles": LA_ROLES,
        "errors": errors, "error_title": bool(errors), "done": done}, status=status)


def _la_code(value: str) -> str:
    if not LA.fullmatch(value.upper()):
        raise Problem(404, "Not found", "There is no such local authority.")
    return value.upper()


def _urn(value: str) -> str:
    if not URN.fullmatch(value):
        raise Problem(404, "Not found", "There is no such school.")
    return value


@router.get("/schools")
async def school_list(request: Request, urn: str | None = None) -> Response:
    """The schools the notifier knows, by name, a page at a time; `?urn=` opens one."""
    if await admin_of(request) is None:
        return to_sign_in()
    errors: list[dict[str, str]] = []
    if urn is not None:
        if URN.fullmatch(urn.strip()):
            return RedirectResponse(f"/portal/admin/schools/{urn.strip()}", status_code=303)
        errors = [{"href": "#urn", "message": _NO_URN}]
    query = dict(request.query_params)
    number = portal_inbox.page_number(query.get("page"))
    s = schools.c
    async with ctx_of(request).engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(schools))).scalar_one()
        rows = (await conn.execute(
            select(s.urn, s.name, s.la_code, s.participates, s.status)
            .order_by(s.name, s.urn).limit(portal_inbox.PAGE_SIZE)
            .offset((number - 1) * portal_inbox.PAGE_SIZE))).all()
    return await page(request, "admin/list.html", {
        "title": "Schools", "columns": ["School", "URN", "Local authority", "Takes part"],
        "rows": [{"cells": [r.name, r.urn, r.la_code, "Yes" if r.participates else "No"],
                  "name": r.name, "href": f"/portal/admin/schools/{r.urn}"} for r in rows],
        "pager": portal_inbox.pager(number, total, "/portal/admin/schools", query),
        "saved": query.get("saved"), "errors": errors, "error_title": bool(errors),
        "open": {"action": "/portal/admin/schools", "label": "URN", "name": "urn",
                 "value": urn or "", "hint": "6 or 7 digits, for example 103456"}},
        status=422 if errors else 200)


@router.get("/schools/{urn}")
async def school(request: Request, urn: str) -> Response:
    """A school's details and contacts, its calendar and roll uploads (blank when new)."""
    if await admin_of(request) is None:
        return to_sign_in()
    done = request.query_params.get("roster")
    return await _school_page(request, _urn(urn), await _stored_school(request, urn),
                              done=f"Roll replaced: {done} pupils." if done else None)


@router.post("/schools/{urn}")
async def save_school(request: Request, urn: str) -> Response:
    """Create or replace the school at the matcher (its webhook and escalation are kept)."""
    form = await checked_form(request)
    if await admin_of(request) is None:
        return to_sign_in()
    urn = _urn(urn)
    stored = await _stored_school(request, urn)
    body: dict[str, Any] = {
        "name": str(form.get("name", "")).strip(),
        "la_code": str(form.get("la_code", "")).strip(),
        "postcode": str(form.get("postcode", "")).strip() or None,
        "participates": form.get("participates") != "no",
        "day_starts_at": str(form.get("day_starts_at", "")).strip(),
        "contacts": contacts_of(form, SCHOOL_ROLES)}
    if (stored.get("webhook") or {}).get("url"):
        body["webhook"] = {"url": stored["webhook"]["url"]}  # the stored secret is kept
    errors = [e for e, wrong in (
        ({"href": "#name", "message": "Enter the school's name"}, not body["name"]),
        ({"href": "#la_code", "message": "Choose the school's local authority"},
         not body["la_code"])) if wrong]
    if errors:
        return await _school_page(request, urn, stored | body, errors, 422)
    answer = await call(request, ctx_of(request).matcher(), "PUT", f"/v1/schools/{urn}",
                        json=body)
    if not answer.is_success:
        return await _school_page(request, urn, stored | body, errors_of(answer),
                                  answer.status_code)
    return RedirectResponse(f"/portal/admin/schools?saved={urn}", status_code=303)


@router.post("/schools/{urn}/calendar")
async def school_calendar(request: Request, urn: str) -> Response:
    """The school's own term dates (.ics) or its overrides (`urn,date,kind` CSV)."""
    _, body, media_type = await upload_of(request)
    if await admin_of(request) is None:
        return to_sign_in()
    urn = _urn(urn)
    stored = await _stored_school(request, urn)
    if body is None:
        return await _school_page(request, urn, stored, missing_file("calendar-file"), 422)
    answer = await call(request, ctx_of(request).matcher(), "PUT", f"/v1/schools/{urn}/calendar",
                        content=body, media_type=media_type)
    if not answer.is_success:
        return await _school_page(request, urn, stored, errors_of(
            answer, {"": "calendar-file"}), answer.status_code)
    return await _school_page(request, urn, stored,
                              done=f"Calendar replaced: {answer.json()['days']} days.")


@router.post("/schools/{urn}/roster")
async def school_roster(request: Request, urn: str) -> Response:
    """Replace the school's roll with a roster CSV: all rows or none; each bad row named."""
    _, body, _ = await upload_of(request)
    if await admin_of(request) is None:
        return to_sign_in()
    urn = _urn(urn)
    if body is None:
        return await _school_page(request, urn, await _stored_school(request, urn),
                                  missing_file("roster-file"), 422)
    answer = await call(request, ctx_of(request).matcher(), "POST", f"/v1/schools/{urn}/roster",
                        content=body, media_type="text/csv")
    if not answer.is_success:
        return await _school_page(request, urn, await _stored_school(request, urn), errors_of(
            answer, {"": "roster-file"}), answer.status_code)
    return RedirectResponse(f"/portal/admin/schools/{urn}?roster={answer.json()['rows']}",
                            status_code=303)


async def _stored_school(request: Request, urn: str) -> dict[str, Any]:
    answer = await call(request, ctx_of(request).matcher(), "GET", f"/v1/schools/{_urn(urn)}")
    found: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
    return found


async def _school_page(request: Request, urn: str, values: Mapping[str, Any],
                       errors: Sequence[Mapping[str, str]] = (), status: int = 200,
                       done: str | None = None) -> Response:
    return await page(request, "admin/school.html", {
        "urn": urn, "s": values, "known": bool(values.get("updated_at")),
        "contacts": contact_rows(values.get("contacts") or []), "roles": SCHOOL_ROLES,
        "las": await la_names(request), "errors": errors, "error_title": bool(errors),
        "done": done}, status=status)
