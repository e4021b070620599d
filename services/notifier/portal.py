"""`/portal/`: the one portal for people. Sign in; the inbox; a notification (an audited
disclosure), its acknowledgement and each child's attendance; and, for LA officers, the review
queue (services/notifier/portal_reviews.py). What every page shares: portal_pages.py."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.local_time import LONDON
from services.common.problems import Problem
from services.common.security import Principal
from services.notifier import (
    actions,
    api,
    attendance,
    portal_admin,
    portal_audit,
    portal_inbox,
    portal_links,
    portal_partners,
    portal_partnership,
    portal_record,
    portal_reviews,
    portal_sessions,
)
from services.notifier import portal_labels as labels
from services.notifier.context import NotifierContext
from services.notifier.models import schools
from services.notifier.open_items import open_items
from services.notifier.portal_labels import ACTION_LABELS, GROUP_TAGS, GROUPS
from services.notifier.portal_pages import (
    CSRF_COOKIE,
    HERE,
    SecureRoute,
    checked_form,
    ctx_of,
    elsewhere,
    end_session,
    home_of,
    page,
    problem_page,
    session_token,
    signed_in,
    signed_in_by,
    start_session,
    to_sign_in,
)
from services.notifier.portal_reviews import countdown

__all__ = ["CSRF_COOKIE", "router"]
log = logging.getLogger(__name__)
DESK_ON_INBOX = 5  # the soonest of the LA's open items shown above its notifications
DESK_KINDS = {"notification": "Notifications", "review": "Reviews"}
_ATTENDED = {"attended": True, "absent": False}

router = APIRouter(prefix="/portal", tags=["portal"], route_class=SecureRoute,
                   include_in_schema=False)


# what the portal serves from its own origin: govuk-frontend built by
# scripts/install-frontend.sh into static/build/, and the script that starts its components
STATIC = {"portal.css": ("build/portal.css", "text/css"),
          "govuk-frontend.min.js": ("build/govuk-frontend.min.js", "text/javascript"),
          "portal.mjs": ("portal.mjs", "text/javascript")}


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The stylesheet and scripts (a 404 until scripts/install-frontend.sh has built them)."""
    if name not in STATIC:
        raise Problem(404, "Not found")
    path, media_type = STATIC[name]
    try:
        body = (HERE / "static" / path).read_bytes()
    except FileNotFoundError:
        raise Problem(404, "Not found", "Run scripts/install-frontend.sh.") from None
    return Response(body, media_type=media_type)


@router.get("/accessibility")
async def accessibility(request: Request) -> Response:
    """The accessibility statement: what was tested and how to report a problem."""
    return await page(request, "accessibility.html", {})


@router.get("/sign-in")
async def sign_in_page(request: Request, token: str | None = None) -> Response:
    """The sign-in form; an e-mailed `?token=` shows its link's page first (and uses
    nothing: services/notifier/portal_links.py)."""
    if token:
        return await portal_links.show_link(request, token)
    if (home := await elsewhere(request)) is not None:
        return home
    return await page(request, "sign_in.html", {"link": request.query_params.get("link")})


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Password + TOTP → the session cookie and the inbox; failures are generic and throttled."""
    form = await checked_form(request)
    session = await signed_in_by(request, form)
    if isinstance(session, Response):
        return session
    response = RedirectResponse(await home_of(request, session.token), status_code=303)
    start_session(request, response, session.token, session.expires_in)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session at the identity service (its token is then refused everywhere:
    services/common/revocations.py), and forget the cookies."""
    await checked_form(request)
    if token := session_token(request):
        try:
            await ctx_of(request).identity().delete(
                "/v1/sessions/current", headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError:
            # the cookie still goes; the token lives on only until it expires
            log.warning("sign-out not recorded: identity service unavailable")
    response = RedirectResponse("/portal/sign-in", status_code=303)
    end_session(request, response)
    return response


@router.get("/")
async def inbox(request: Request) -> Response:
    """The notifications the person may see (a school's, or an LA's escalations and
    fallbacks), newest first; no child data."""
    principal = await signed_in(request, "notifications:read")
    if principal is None:
        return to_sign_in()
    ctx = ctx_of(request)
    query = dict(request.query_params)
    filters = portal_inbox.Filters.of(query)
    number = portal_inbox.page_number(query.get("page"))
    async with ctx.engine.connect() as conn:
        listed = await portal_inbox.inbox_page(conn, principal, filters, number)
        desk = await _desk(conn, ctx, principal) if _has_desk(principal) else []
    names = await _school_names(ctx, [*(n["school_urn"] for n in listed.items),
                                      *(d["item"].school_urn for d in desk)])
    done = next((k for k in ("acknowledged", "attendance") if request.query_params.get(k)), None)
    pages = portal_inbox.pager(number, listed.total, "/portal/", query)
    return await page(request, "inbox.html", {
        "items": listed.items, "counts": listed.counts, "groups": GROUPS, "group_tags":
        GROUP_TAGS, "filters": filters, "pager": pages, "names": names, "done": done,
        "desk": desk[:DESK_ON_INBOX], "desk_total": len(desk), "error_title": filters.errors})


@router.get("/open-items")
async def open_items_page(request: Request) -> Response:
    """The LA's desk: everything still open in the officer's LAs, soonest next step first,
    who owns it now, by when and who is told next, a page at a time."""
    principal = await signed_in(request, "notifications:read")
    if principal is None or not _has_desk(principal):
        return to_sign_in()
    ctx = ctx_of(request)
    query = dict(request.query_params)
    kind = query.get("kind") if query.get("kind") in DESK_KINDS else ""
    async with ctx.engine.connect() as conn:
        desk = await _desk(conn, ctx, principal)
    counts = {k: sum(d["item"].kind == k for d in desk) for k in DESK_KINDS}
    counts["overdue"] = sum(d["item"].past_deadline for d in desk)
    chosen = [d for d in desk if not kind or d["item"].kind == kind]
    number = portal_inbox.page_number(query.get("page"))
    pages = portal_inbox.pager(number, len(chosen), "/portal/open-items", query)
    # open_items() works out each item's next step in Python (the chain's rules), so its
    # page is cut from the LA's open items rather than in SQL
    shown = chosen[(pages.page - 1) * pages.size:pages.page * pages.size]
    names = await _school_names(ctx, [d["item"].school_urn for d in shown])
    return await page(request, "open_items.html", {
        "desk": shown, "counts": counts, "kinds": DESK_KINDS, "kind": kind, "pager": pages,
        "names": names})


@router.get("/notifications/{notification_id}")
async def notification(request: Request, notification_id: str) -> Response:
    """One notification's details: an audited disclosure (channel "portal")."""
    principal = await signed_in(request, "notifications:read")
    if principal is None:
        return to_sign_in()
    ctx = ctx_of(request)
    try:
        details = await api.view_notification(
            ctx, uuid.UUID(notification_id), principal, channel="portal")
    except (ValueError, Problem) as exc:
        return await problem_page(request, exc)
    answers = await attendance.attendance_of(ctx, uuid.UUID(details["id"]))
    # both read the children ordered by id: pair them unless one joined in between
    rows = ([{"child": c, "id": a.child_id, "attended": a.attended, "at": a.attendance_at}
             for c, a in zip(details["children"], answers, strict=True)]
            if len(answers) == len(details["children"]) else [])
    names = await _school_names(ctx, [details["school_urn"]])
    deadline = details.get("deadline_at")
    return await page(request, "notification.html", {
        "n": details, "action_types": ACTION_LABELS, "children": rows, "school": names,
        "today": ctx.clock().astimezone(LONDON).date().isoformat(),
        "received": datetime.fromisoformat(details["created_at"]).astimezone(LONDON).date()
        .isoformat(),
        "histories": details["history"],
        "directory": await portal_partners.directory_for(ctx, principal, details["la_code"]),
        "for_whom": labels.school(details["school_urn"], names, details["la_code"]),
        "deadline": countdown(datetime.fromisoformat(deadline), ctx.clock()) if deadline
        else None,
        "records_attendance": details["school_urn"] in principal.school_urns and bool(rows),
        "unanswered": any(r["attended"] is None for r in rows)})


@router.post("/notifications/{notification_id}/acknowledge")
async def acknowledge(request: Request, notification_id: str) -> Response:
    """Acknowledge with the action taken; its attendance answer is for every child with
    none recorded yet (a child absent goes to the LA at once)."""
    form = await checked_form(request)
    principal = await signed_in(request, "notifications:read")
    if principal is None:
        return to_sign_in()
    done, errors = actions.actions_of_form(form)
    said = str(form.get("attended", ""))
    if said not in ("yes", "no", ""):
        errors.append({"href": "#attended-yes", "message": "Choose whether the child attended"})
    if errors:
        return await _not_recorded(request, notification_id, "Acknowledgement not recorded",
                                   errors)
    attended = None if not said else said == "yes"
    text = api._with_attendance(api.AcknowledgeIn(attended=attended))
    ctx = ctx_of(request)
    try:
        if "notifications:ack" not in principal.scopes:
            raise Problem(403, "Forbidden", "Your account may not acknowledge notifications.")
        if attended is not None:
            # first, so that a refused acknowledgement still leaves the answer with the LA
            await attendance.record_attendance(ctx, uuid.UUID(notification_id), principal,
                                               channel="portal", unanswered=attended)
        await api.acknowledge_notification(
            ctx, uuid.UUID(notification_id), api.AcknowledgeIn(action_taken=text, actions=done),
            principal, channel="portal")
    except (ValueError, Problem) as exc:
        if bad := actions.date_errors(exc, done):
            return await _not_recorded(request, notification_id,
                                       "Acknowledgement not recorded", bad)
        return await problem_page(request, exc)
    return RedirectResponse("/portal/?acknowledged=1", status_code=303)


@router.post("/notifications/{notification_id}/actions")
async def add_action(request: Request, notification_id: str) -> Response:
    """A follow-up action on an acknowledged notification, then the notification again."""
    form = await checked_form(request)
    principal = await signed_in(request, "notifications:ack")
    if principal is None:
        return to_sign_in()
    action, errors = actions.action_of_form(form)
    if action is None:
        return await _not_recorded(request, notification_id, "Action not recorded", errors)
    try:
        await api.add_follow_up(ctx_of(request), uuid.UUID(notification_id), action, principal)
    except (ValueError, Problem) as exc:
        if bad := actions.date_errors(exc, [action]):
            return await _not_recorded(request, notification_id, "Action not recorded", bad)
        return await problem_page(request, exc, {
            409: "Acknowledge the notification before adding a follow-up."})
    return RedirectResponse(f"/portal/notifications/{uuid.UUID(notification_id)}#actions",
                            status_code=303)


@router.post("/notifications/{notification_id}/attendance")
async def record_attendance(request: Request, notification_id: str) -> Response:
    """Each child attended or absent this morning, at any time of the day."""
    form = await checked_form(request)
    principal = await signed_in(request, "notifications:ack")
    if principal is None:
        return to_sign_in()
    try:
        answers = _answers(form)
    except ValueError:
        answers = []
    if not answers:
        return await _not_recorded(request, notification_id, "Attendance not recorded", [
            {"href": "#attendance", "message": "Choose attended or absent for at least one "
             "child"}])
    try:
        await attendance.record_attendance(ctx_of(request), uuid.UUID(notification_id),
                                           principal, channel="portal", answers=answers)
    except (ValueError, Problem) as exc:
        return await problem_page(request, exc)
    return RedirectResponse("/portal/?attendance=1", status_code=303)


def _has_desk(principal: Principal) -> bool:
    return principal.role == "la_officer" and bool(principal.la_codes)


async def _desk(conn: AsyncConnection, ctx: NotifierContext, principal: Principal
                ) -> list[dict[str, Any]]:
    """The LA's open items, each with the time left before its deadline."""
    now = ctx.clock()
    return [{"item": item, "countdown": countdown(item.deadline_at, now)}
            for item in await open_items(conn, now=now, la_codes=principal.la_codes,
                                         service_desk=ctx.deps.service_desk)]


def _answers(form: Mapping[str, Any]) -> list[attendance.ChildAttendance]:
    """The `child-<id>=attended|absent` fields; ValueError for any other `child-` field."""
    answers = []
    for key, value in form.items():
        if key.startswith("child-"):
            if str(value) not in _ATTENDED:
                raise ValueError("neither attended nor absent")
            answers.append(attendance.ChildAttendance(child_id=uuid.UUID(key[len("child-"):]),
                                                      attended=_ATTENDED[str(value)]))
    return answers


async def _school_names(ctx: NotifierContext, urns: Iterable[str | None]) -> dict[str, str]:
    wanted = sorted({u for u in urns if u})
    if not wanted:
        return {}
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(select(schools.c.urn, schools.c.name)
                                  .where(schools.c.urn.in_(wanted)))
        return {r.urn: r.name for r in rows}


async def _not_recorded(request: Request, notification_id: str, title: str,
                        errors: list[dict[str, str]]) -> Response:
    """The form's errors, each linking to its field on the notification (shown again only
    when the person goes back: showing it is a disclosure)."""
    back = f"/portal/notifications/{uuid.UUID(notification_id)}" if _is_uuid(
        notification_id) else "/portal/"
    return await page(request, "error.html", {
        "title": title, "back": back, "error_title": True, "message": "Go back to the "
        "notification and answer the questions marked.", "errors": [
            e | {"href": back + e["href"]} for e in errors]}, status=422)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


router.include_router(portal_links.router)
router.include_router(portal_reviews.router)
router.include_router(portal_partnership.router)
router.include_router(portal_partners.router)
router.include_router(portal_audit.router)
router.include_router(portal_record.router)
router.include_router(portal_admin.router)
router.include_router(portal_sessions.router)
