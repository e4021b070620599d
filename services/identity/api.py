"""`POST /v1/token`, `POST /v1/sessions` and `GET /.well-known/jwks.json`: the only issuer."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.auth_api import (
    SESSION_COOKIE,
    SESSION_RESPONSES,
    TOKEN_OPENAPI,
    TOKEN_RESPONSES,
    GrantType,
    SessionIn,
    TokenOut,
)
from services.common.context import AppContext, context_of
from services.common.problems import Problem, problem_responses
from services.common.relay import CLIENT_ADDRESS_HEADER
from services.common.security import Principal
from services.identity.accounts import SignIn, SignInPolicy, authenticate_client, authenticate_user
from services.identity.keys import Keyset
from services.identity.passwords import GateFull
from services.identity.security_events import Attempt, client_address, printable_agent
from services.identity.tokens import issue_token
from services.identity.totp_vault import TotpVault

log = logging.getLogger(__name__)
router = APIRouter(tags=["auth"])
_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="daybreak"'}
_BUSY = {"Retry-After": "5"}
_TOKEN_BUSY: dict[int | str, dict[str, Any]] = {503: {
    "description": "Too many sign-ins waiting: retry after Retry-After",
    "content": TOKEN_RESPONSES[401]["content"]}}


@dataclass(kw_only=True)
class IdentityContext(AppContext):
    """The shared adapters plus the signing keys, how sign-ins are checked and the key that
    seals TOTP secrets."""

    keyset: Keyset
    sign_in: SignInPolicy
    vault: TotpVault


get_identity = context_of(IdentityContext)


Ctx = Annotated[IdentityContext, Depends(get_identity)]


def _oauth_error(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status, headers={
        "Cache-Control": "no-store", **(headers or {})})


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        client_id, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (client_id, secret) if sep else None


async def _check(
    ctx: IdentityContext, request: Request,
    check: Callable[[AsyncConnection, Attempt], Awaitable[SignIn]],
) -> SignIn:
    """One sign-in check in a gate slot and its own transaction, committed whatever it
    decided (the failure count and the security event); raises GateFull when busy."""
    peer = request.client.host if request.client else None
    attempt = Attempt(client_address=client_address(
        peer, request.headers.get(CLIENT_ADDRESS_HEADER), ctx.sign_in.trusted_proxies),
        user_agent=printable_agent(request.headers.get("user-agent")), at=ctx.clock())
    try:
        async with ctx.sign_in.gate.admit(), ctx.uow() as uow:
            decided = await check(uow.conn, attempt)
            await uow.commit()
    except GateFull:
        log.warning("sign-in refused: too many waiting", extra={
            "client_address": attempt.client_address})
        raise
    return decided


def _mint(ctx: IdentityContext, principal: Principal) -> tuple[str, int]:
    settings = ctx.settings
    ttl = (settings.client_token_ttl_seconds if principal.kind == "client"
           else settings.user_token_ttl_seconds)
    token = issue_token(ctx.keyset, principal, issuer=settings.jwt_issuer, now=ctx.clock(),
                        ttl_s=ttl)
    return token, ttl


@router.post("/v1/token", response_model=TokenOut, responses=TOKEN_RESPONSES | _TOKEN_BUSY,
             openapi_extra=TOKEN_OPENAPI)
async def token(
    request: Request, grant_type: GrantType, ctx: Ctx
) -> JSONResponse:
    """OAuth2 client credentials (HTTP Basic) → a short-lived bearer token."""
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type")
    creds = _basic_credentials(request)
    if creds is None:
        return _oauth_error(401, "invalid_client", _BASIC_CHALLENGE)
    try:
        decided = await _check(ctx, request, lambda conn, attempt: authenticate_client(
            conn, client_id=creds[0][:128], secret=creds[1][:256], attempt=attempt,
            policy=ctx.sign_in))
    except GateFull:
        return _oauth_error(503, "temporarily_unavailable", _BUSY)
    if decided.throttled:
        return _oauth_error(429, "slow_down", {"Retry-After": "60"})
    principal = decided.principal
    if principal is None:
        return _oauth_error(401, "invalid_client", _BASIC_CHALLENGE)
    access, ttl = _mint(ctx, principal)
    return JSONResponse(
        TokenOut(access_token=access, expires_in=ttl, scope=" ".join(sorted(principal.scopes)))
        .model_dump(),
        headers={"Cache-Control": "no-store"},
    )


@router.post("/v1/sessions", response_model=TokenOut,
             responses=SESSION_RESPONSES | problem_responses(503))
async def sessions(request: Request, body: SessionIn, ctx: Ctx) -> JSONResponse:
    """Password + TOTP → a bearer token and the portal's session cookie."""
    try:
        decided = await _check(ctx, request, lambda conn, attempt: authenticate_user(
            conn, email=body.email, password=body.password, totp=body.totp, attempt=attempt,
            policy=ctx.sign_in, vault=ctx.vault))
    except GateFull:
        raise Problem(503, "Sign-in is busy", "Try again in a few seconds.",
                      headers=_BUSY) from None
    if decided.throttled:
        raise Problem(429, "Too many sign-in attempts", "Try again later.",
                      headers={"Retry-After": "60"})
    principal = decided.principal
    if principal is None:
        raise Problem(401, "Sign-in failed", "Email, password or code is wrong.")
    access, ttl = _mint(ctx, principal)
    response = JSONResponse({"access_token": access, "expires_in": ttl, "token_type": "Bearer"},
                            headers={"Cache-Control": "no-store"})
    response.set_cookie(
        SESSION_COOKIE, access, max_age=ttl, httponly=True, secure=ctx.settings.cookie_secure,
        samesite="strict", path="/",
    )
    return response


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(ctx: Ctx) -> JSONResponse:
    """The public halves of the signing keys (active and not yet retired), by `kid`."""
    return JSONResponse(ctx.keyset.jwks(), headers={"Cache-Control": "public, max-age=300"})
