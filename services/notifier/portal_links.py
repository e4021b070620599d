"""E-mailed sign-in links: `GET /portal/sign-in?token=` (what the e-mails carry) and
`GET /portal/link/{token}` show the link's page and use nothing; `POST /portal/link`
(CSRF-checked) uses it.

A link keeps the meaning it always had: it leads the person it was sent to to their new
notifications, once, within its lifetime, and never signs anyone in by itself (the password
and code are still asked for). E-mail scanners fetch every link in a message, so looking must
not use it up; and it opens for its person only: the one signed in (or signing in on its page)
must have one of the addresses the e-mail went to (the `email` claim of their token) for it
to be used. Anyone else who signs in on its page is signed in as on the sign-in form and the
link is left as it was (a team mailbox's link leads each colleague to sign in, and is used by
none); someone signed in already is told it was sent to someone else.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.notifier.dispatch import redeem_sign_in_link, sign_in_link
from services.notifier.portal_pages import (
    SecureRoute,
    Session,
    checked_form,
    ctx_of,
    home_of,
    page,
    person_of,
    principal_of,
    session_token,
    signed_in_by,
    start_session,
)

router = APIRouter(route_class=SecureRoute)
MAX_TOKEN = 200
EXPIRED = "/portal/sign-in?link=expired"


async def show_link(request: Request, token: str) -> Response:
    """The link's page: the sign-in form that uses it, or (signed in) a button that does;
    an unusable link sends to the sign-in form, saying so."""
    ctx = ctx_of(request)
    async with ctx.engine.connect() as conn:
        link = await sign_in_link(conn, token[:MAX_TOKEN], now=ctx.clock())
    if link is None:
        return RedirectResponse(EXPIRED, status_code=303)
    principal = await principal_of(request)
    if principal is None:
        return await page(request, "sign_in.html", {"link": "ok", "link_token": token})
    return await page(request, "link.html", {"token": token,
                                             "yours": link.is_for(principal.email)})


@router.get("/link/{token}")
async def link_page(request: Request, token: str) -> Response:
    """An e-mailed link's page (looking at it uses nothing)."""
    return await show_link(request, token)


@router.post("/link")
async def use_link(request: Request) -> Response:
    """Use the link as its person: signed in already, or signing in with the form here."""
    form = await checked_form(request)
    token = str(form.get("token", ""))[:MAX_TOKEN]
    session: Session | None = None
    if "email" in form:
        signed = await signed_in_by(request, form, again={"link": "ok", "link_token": token})
        if isinstance(signed, Response):
            return signed
        session = signed
    bearer = session.token if session else session_token(request)
    principal = await person_of(request, bearer)
    if principal is None:
        return RedirectResponse(EXPIRED if not token else f"/portal/link/{token}",
                                status_code=303)
    ctx = ctx_of(request)
    async with ctx.uow() as uow:
        outcome = await redeem_sign_in_link(uow.conn, token, now=ctx.clock(),
                                            email=principal.email)
        await uow.commit()
    if outcome == "not_yours" and session is None:
        response = await page(request, "link.html", {"token": token, "yours": False},
                              status=403)
    else:
        # used now, or already; or someone else signed in on its page (a colleague reading a
        # team mailbox): signed in as anyone would be, the link left for its person
        response = RedirectResponse(await home_of(request, bearer), status_code=303)
    if session is not None:
        start_session(request, response, session.token, session.expires_in)
    return response
