"""`/portal/partners`: the LA officer keeps the LA's partner directory, one entry at a time
(add, change, remove), through the same rules as `PUT /v1/partners/{la_code}`; and the
directory beside a notification, for whoever may read it (services/notifier/partners.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.problems import Problem
from services.common.security import Principal
from services.notifier.context import NotifierContext
from services.notifier.partners import (
    FIELDS,
    GUIDANCE_MAX,
    Partner,
    by_need,
    may_edit,
    may_read,
    partners_of,
    replace_partners,
)
from services.notifier.portal_labels import NEED_LABELS
from services.notifier.portal_pages import (
    SecureRoute,
    checked_form,
    ctx_of,
    page,
    problem_page,
    signed_in,
    to_sign_in,
)

router = APIRouter(route_class=SecureRoute)
MESSAGES = {
    "need_type": "Choose what the partner helps with",
    "name": "Enter the partner's name, in 200 characters or fewer",
    "phone": "Enter a UK telephone number, like 0121 303 1234",
    "email": "Enter an e-mail address, like team@example.org",
    "web": "Enter a web address that starts with https://",
    "hours": "Enter the hours in 200 characters or fewer",
    "guidance": f"Enter guidance of {GUIDANCE_MAX:,} characters or fewer",
}
_NOT_YOURS = {404: "There is no such partner directory for your local authority."}


async def directory_for(ctx: NotifierContext, principal: Principal, la_code: str | None
                        ) -> dict[str, list[dict[str, Any]]]:
    """The LA's directory by need type, for a person who may read it (else nothing)."""
    if not la_code:
        return {}
    async with ctx.engine.connect() as conn:
        if not await may_read(conn, principal, la_code):
            return {}
        return by_need(await partners_of(conn, la_code))


@router.get("/partners")
async def partners_page(request: Request, la: str | None = None,
                        done: str | None = None) -> Response:
    """The directory of one of the officer's LAs, by need type, with its changes."""
    principal, la_code = await _officer(request, la)
    if principal is None or la_code is None:
        return to_sign_in()
    async with ctx_of(request).engine.connect() as conn:
        entries = await partners_of(conn, la_code)
    return await page(request, "partners.html", {
        "la_code": la_code, "las": sorted(principal.la_codes), "labels": NEED_LABELS,
        "entries": list(enumerate(entries)), "done": done if done in _DONE else None})


@router.get("/partners/entry")
async def entry_page(request: Request, la: str | None = None,
                     entry: int | None = None) -> Response:
    """The form for one entry: a new one, or the `entry`-th to change."""
    principal, la_code = await _officer(request, la)
    if principal is None or la_code is None:
        return to_sign_in()
    async with ctx_of(request).engine.connect() as conn:
        entries = await partners_of(conn, la_code)
    if entry is not None and not 0 <= entry < len(entries):
        return await problem_page(request, Problem(404, "Not found"),
                                  {404: "There is no such entry in the directory."})
    given = entries[entry] if entry is not None else {}
    return await _form(request, la_code, entry, given, [])


@router.post("/partners/entry")
async def save_entry(request: Request) -> Response:
    """Add the entry, or change the `entry`-th; refused fields are shown again, named."""
    form = await checked_form(request)
    principal, la_code = await _officer(request, str(form.get("la", "")))
    if principal is None or la_code is None:
        return to_sign_in()
    entry = _index(form.get("entry"))
    given = {f: str(form.get(f, "")).strip() for f in FIELDS}
    try:
        partner = Partner.model_validate({k: v for k, v in given.items() if v})
    except ValidationError as exc:
        fields = dict.fromkeys(str(e["loc"][0]) for e in exc.errors() if e["loc"])
        errors = [{"href": f"#{f}", "message": MESSAGES.get(f, "Check this answer")}
                  for f in fields]
        return await _form(request, la_code, entry, given, errors, status=422)

    def change(entries: list[Partner]) -> list[Partner] | None:
        if entry is None:
            return [*entries, partner]
        if entry >= len(entries):
            return None
        return [*entries[:entry], partner, *entries[entry + 1:]]

    return await _change(request, principal, la_code, change, "saved")


@router.post("/partners/remove")
async def remove_entry(request: Request) -> Response:
    """Take the `entry`-th out of the directory."""
    form = await checked_form(request)
    principal, la_code = await _officer(request, str(form.get("la", "")))
    if principal is None or la_code is None:
        return to_sign_in()
    entry = _index(form.get("entry"))

    def change(entries: list[Partner]) -> list[Partner] | None:
        if entry is None or entry >= len(entries):
            return None
        return [*entries[:entry], *entries[entry + 1:]]

    return await _change(request, principal, la_code, change, "removed")


_DONE = {"saved": "Partner saved.", "removed": "Partner removed."}


async def _change(request: Request, principal: Principal, la_code: str,
                  change: Any, done: str) -> Response:
    """Read, change and replace the LA's directory, one officer at a time."""
    ctx = ctx_of(request)
    async with ctx.uow() as uow:
        await _lock(uow.conn, la_code)
        entries = [Partner.model_validate(e) for e in await partners_of(uow.conn, la_code)]
        changed = change(entries)
        if changed is None:
            return await problem_page(request, Problem(404, "Not found"), {
                404: "That entry is no longer in the directory: someone changed it."})
        await replace_partners(uow.conn, la_code, changed, by=principal, at=ctx.clock())
        await uow.commit()
    return RedirectResponse(f"/portal/partners?la={la_code}&done={done}", status_code=303)


async def _lock(conn: AsyncConnection, la_code: str) -> None:
    # an empty directory has no rows to lock: two officers' changes queue on the LA instead
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"partners:{la_code}"))))


async def _officer(request: Request, la: str | None) -> tuple[Principal | None, str | None]:
    """The signed-in LA officer and the LA chosen (their first when none is), or Nones."""
    principal = await signed_in(request, "notifications:read")
    if principal is None or principal.role != "la_officer" or not principal.la_codes:
        return None, None
    la_code = la or min(principal.la_codes)
    if not may_edit(principal, la_code):
        raise Problem(404, "Not found", _NOT_YOURS[404])
    return principal, la_code


def _index(value: Any) -> int | None:
    try:
        index = int(str(value))
    except ValueError:
        return None
    return index if index >= 0 else None


async def _form(request: Request, la_code: str, entry: int | None, given: Mapping[str, Any],
                errors: list[dict[str, str]], *, status: int = 200) -> Response:
    return await page(request, "partner_form.html", {
        "la_code": la_code, "entry": entry, "given": given, "labels": NEED_LABELS,
        "errors": errors, "error_title": bool(errors),
        "bad": {e["href"].lstrip("#"): e["message"] for e in errors}}, status=status)
