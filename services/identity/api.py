"""`POST /v1/token`, `POST /v1/sessions` and `GET /.well-known/jwks.json`: the only issuer."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

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
from services.common.problems import Problem
from services.common.security import Principal
from services.identity.accounts import TooManyAttempts, authenticate_client, authenticate_user
from services.identity.keys import Keyset
from services.identity.tokens import issue_token
from services.identity.totp_vault import TotpVault

router = APIRouter(tags=["auth"])
_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="daybreak"'}


@dataclass(kw_only=True)
class IdentityContext(AppContext):
    """The shared adapters plus the signing keys and the key that seals TOTP secrets."""

    keyset: Keyset
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


def _mint(ctx: IdentityContext, principal: Principal) -> tuple[str, int]:
    settings = ctx.settings
    ttl = (settings.client_token_ttl_seconds if principal.kind == "client"
           else settings.user_token_ttl_seconds)
    token = issue_token(ctx.keyset, principal, issuer=settings.jwt_issuer, now=ctx.clock(),
                        ttl_s=ttl)
    return token, ttl


@router.post("/v1/token", response_model=TokenOut, responses=TOKEN_RESPONSES,
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
    async with ctx.uow() as uow:
        try:
            principal = await authenticate_client(
                uow.conn, client_id=creds[0][:128], secret=creds[1][:256], now=ctx.clock(),
                max_failures=ctx.settings.login_max_failures,
                window=timedelta(seconds=ctx.settings.login_failure_window_seconds),
            )
        except TooManyAttempts:
            return _oauth_error(429, "slow_down", {"Retry-After": "60"})
        await uow.commit()
    if principal is None:
        return _oauth_error(401, "invalid_client", _BASIC_CHALLENGE)
    access, ttl = _mint(ctx, principal)
    return JSONResponse(
        TokenOut(access_token=access, expires_in=ttl, scope=" ".join(sorted(principal.scopes)))
        .model_dump(),
        headers={"Cache-Control": "no-store"},
    )


@router.post("/v1/sessions", response_model=TokenOut, responses=SESSION_RESPONSES)
async def sessions(body: SessionIn, ctx: Ctx) -> JSONResponse:
    """Password + TOTP → a bearer token and the portal's session cookie."""
    async with ctx.uow() as uow:
        try:
            principal = await authenticate_user(
                uow.conn, email=body.email, password=body.password, totp=body.totp,
                now=ctx.clock(), max_failures=ctx.settings.login_max_failures,
                window=timedelta(seconds=ctx.settings.login_failure_window_seconds),
                vault=ctx.vault,
            )
        except TooManyAttempts:
            raise Problem(429, "Too many sign-in attempts", "Try again later.",
                          headers={"Retry-After": "60"}) from None
        await uow.commit()
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
