"""`POST /v1/token` and `POST /v1/sessions` at every service's own address, relayed to the
identity service, so clients need not know where the issuer runs.

The issuer's answer comes back as it was given: status, body and the headers a client acts
on (Set-Cookie, Cache-Control, Retry-After, WWW-Authenticate). Bodies are validated here
against the same models the issuer uses, so a malformed request is refused without a hop.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.common.auth_api import (
    SESSION_RESPONSES,
    TOKEN_OPENAPI,
    TOKEN_RESPONSES,
    GrantType,
    SessionIn,
    TokenOut,
)
from services.common.context import AppContext, get_ctx
from services.common.problems import problem_response
from services.common.settings import Settings

log = logging.getLogger("daybreak.relay")
router = APIRouter(tags=["auth"])
_REQUEST_HEADERS = ("authorization", "x-request-id", "accept", "user-agent")
# the address a sign-in came from, which identity believes only from its trusted proxies
# (DAYBREAK_IDENTITY_TRUSTED_PROXIES): whatever a caller sends under this name is replaced
CLIENT_ADDRESS_HEADER = "x-daybreak-client-address"
_RESPONSE_HEADERS = ("content-type", "cache-control", "pragma", "retry-after",
                     "www-authenticate")


def identity_client(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client to the identity service (closed by the app at shutdown)."""
    return httpx.AsyncClient(base_url=settings.identity_url, timeout=settings.identity_timeout_s)


async def relay(
    ctx: AppContext, request: Request, path: str, body: bytes, content_type: str
) -> Response:
    """Send the request on to the issuer and give back its answer; 503 when it is away."""
    headers = {k: v for k, v in request.headers.items() if k in _REQUEST_HEADERS}
    try:
        upstream = await ctx.identity().post(path, content=body, headers=headers | origin_of(
            request) | {"content-type": content_type})
    except httpx.HTTPError as exc:
        log.warning("identity service unavailable", extra={"exc_type": type(exc).__name__})
        return problem_response(503, "Service unavailable",
                                "Sign-in is unavailable; retry later.",
                                headers={"Retry-After": "5"})
    return relayed(upstream)


def origin_of(request: Request) -> dict[str, str]:
    """The headers that tell identity where a relayed sign-in came from: the caller's address
    as this service saw it, and its user agent."""
    origin = {CLIENT_ADDRESS_HEADER: request.client.host} if request.client else {}
    agent = request.headers.get("user-agent")
    return origin | ({"user-agent": agent} if agent else {})


def relayed(upstream: httpx.Response) -> Response:
    """The issuer's answer as this service's: status, body and the headers clients act on."""
    kept = {k: v for k, v in upstream.headers.items() if k in _RESPONSE_HEADERS}
    response = Response(upstream.content, status_code=upstream.status_code, headers=kept)
    for cookie in upstream.headers.get_list("set-cookie"):
        response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
    return response


@router.post("/v1/token", response_model=TokenOut, responses=TOKEN_RESPONSES,
             openapi_extra=TOKEN_OPENAPI)
async def token(
    request: Request, grant_type: GrantType,
    ctx: Annotated[AppContext, Depends(get_ctx)],
) -> Response:
    """OAuth2 client credentials (HTTP Basic) → a short-lived bearer token (from the issuer)."""
    form = await request.form()  # already parsed for grant_type: the same form, re-encoded
    fields = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return await relay(ctx, request, "/v1/token", urlencode(fields).encode(),
                       "application/x-www-form-urlencoded")


@router.post("/v1/sessions", response_model=TokenOut, responses=SESSION_RESPONSES)
async def sessions(
    request: Request, body: SessionIn, ctx: Annotated[AppContext, Depends(get_ctx)]
) -> Response:
    """Password + TOTP → a bearer token and the portal's session cookie (from the issuer)."""
    return await relay(ctx, request, "/v1/sessions", body.model_dump_json().encode(),
                       "application/json")
