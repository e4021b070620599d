"""`POST /v1/token`, `POST /v1/sessions` and the bearer dependencies every service uses."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.common.accounts import TooManyAttempts, authenticate_client, authenticate_user
from services.common.context import AppContext, get_ctx
from services.common.problems import Problem, problem_responses
from services.common.security import InvalidToken, Principal, decode_token, issue_token

router = APIRouter(tags=["auth"])
SESSION_COOKIE = "daybreak_session"
_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="daybreak"'}
# RFC 6749 section 5.2: the token endpoint answers errors as `{"error": ...}`; only a body
# that is no form at all gets the problem+json 400 every route gives
_OAUTH_ERROR: dict[str, Any] = {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}
_OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unsupported grant type, or not a form",
          "content": _OAUTH_ERROR | problem_responses(400)[400]["content"]},
    401: {"description": "Invalid client", "content": _OAUTH_ERROR},
    429: {"description": "Too many attempts", "content": _OAUTH_ERROR},
}


class SessionIn(BaseModel):
    """Sign-in body: password and a current TOTP code."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    totp: str = Field(pattern=r"^[0-9]{6}$")


class TokenOut(BaseModel):
    """A bearer token."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str | None = None


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


@router.post("/v1/token", response_model=TokenOut, responses=_OAUTH_ERRORS)
async def token(
    request: Request,
    grant_type: Annotated[str, Form(max_length=64)],
    ctx: Annotated[AppContext, Depends(get_ctx)],
) -> JSONResponse:
    """OAuth2 client credentials (HTTP Basic) → a short-lived bearer token."""
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type")
    creds = _basic_credentials(request)
    if creds is None:
        return _oauth_error(401, "invalid_client", {"WWW-Authenticate": 'Basic realm="daybreak"'})
    now = ctx.clock()
    async with ctx.uow() as uow:
        try:
            principal = await authenticate_client(
                uow.conn, client_id=creds[0][:128], secret=creds[1][:256], now=now,
                max_failures=ctx.settings.login_max_failures,
                window=timedelta(seconds=ctx.settings.login_failure_window_seconds),
            )
        except TooManyAttempts:
            return _oauth_error(429, "slow_down", {"Retry-After": "60"})
        await uow.commit()
    if principal is None:
        return _oauth_error(401, "invalid_client", {"WWW-Authenticate": 'Basic realm="daybreak"'})
    access, ttl = issue_token(ctx.settings, principal, now=now)
    return JSONResponse(
        TokenOut(access_token=access, expires_in=ttl, scope=" ".join(sorted(principal.scopes)))
        .model_dump(),
        headers={"Cache-Control": "no-store"},
    )


@router.post("/v1/sessions", response_model=TokenOut,
             responses=problem_responses(401, 429))
async def sessions(
    body: SessionIn, ctx: Annotated[AppContext, Depends(get_ctx)]
) -> JSONResponse:
    """Password + TOTP → a bearer token and the portal's session cookie."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        try:
            principal = await authenticate_user(
                uow.conn, email=body.email, password=body.password, totp=body.totp, now=now,
                max_failures=ctx.settings.login_max_failures,
                window=timedelta(seconds=ctx.settings.login_failure_window_seconds),
            )
        except TooManyAttempts:
            raise Problem(429, "Too many sign-in attempts", "Try again later.",
                          headers={"Retry-After": "60"}) from None
        await uow.commit()
    if principal is None:
        raise Problem(401, "Sign-in failed", "Email, password or code is wrong.")
    access, ttl = issue_token(ctx.settings, principal, now=now)
    response = JSONResponse({"access_token": access, "expires_in": ttl, "token_type": "Bearer"},
                            headers={"Cache-Control": "no-store"})
    response.set_cookie(
        SESSION_COOKIE, access, max_age=ttl, httponly=True, secure=ctx.settings.cookie_secure,
        samesite="strict", path="/",
    )
    return response


async def current_principal(
    request: Request, ctx: Annotated[AppContext, Depends(get_ctx)]
) -> Principal:
    """The caller of an API route, from its bearer token (cookies are for the portal only)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "Authentication required", headers=_BEARER_CHALLENGE)
    try:
        return decode_token(ctx.settings, token.strip())
    except InvalidToken:
        raise Problem(401, "Invalid or expired token", headers=_BEARER_CHALLENGE) from None


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only principals holding `scope`."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if scope not in principal.scopes:
            raise Problem(403, "Forbidden", "This credential may not do that.")
        return principal

    return dependency
