"""`POST /v1/token`, `POST /v1/sessions`, `DELETE /v1/sessions/current` and
`GET /.well-known/jwks.json`: the only issuer."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.auth_api import (
    BEARER_SCHEME,
    SESSION_COOKIE,
    SESSION_RESPONSES,
    TOKEN_OPENAPI,
    TOKEN_RESPONSES,
    GrantType,
    SessionIn,
    TokenOut,
    set_host_cookie,
)
from services.common.context import AppContext, context_of
from services.common.problems import Problem, problem_responses
from services.common.security import SERVICES, InvalidToken, Principal, decode_claims
from services.identity.accounts import TooManyAttempts, authenticate_client, authenticate_user
from services.identity.keys import Keyset
from services.identity.sessions import open_session, revoke_session
from services.identity.tokens import issue_token

router = APIRouter(tags=["auth"])
_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="daybreak"'}


@dataclass(kw_only=True)
class IdentityContext(AppContext):
    """The shared adapters plus the signing keys."""

    keyset: Keyset
    wake_relay: Callable[[], None] = lambda: None  # a revocation was committed: publish it


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


async def _mint(ctx: IdentityContext, conn: AsyncConnection, principal: Principal
                ) -> tuple[str, int]:
    """A token for the principal in a new session (kept in the caller's transaction)."""
    settings, now = ctx.settings, ctx.clock()
    ttl = (settings.client_token_ttl_seconds if principal.kind == "client"
           else settings.user_token_ttl_seconds)
    sid = await open_session(conn, principal, now=now, ttl_s=ttl)
    token = issue_token(ctx.keyset, principal, issuer=settings.jwt_issuer, now=now, ttl_s=ttl,
                        sid=sid)
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
        if principal is not None:
            access, ttl = await _mint(ctx, uow.conn, principal)
        await uow.commit()
    if principal is None:
        return _oauth_error(401, "invalid_client", _BASIC_CHALLENGE)
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
            )
        except TooManyAttempts:
            raise Problem(429, "Too many sign-in attempts", "Try again later.",
                          headers={"Retry-After": "60"}) from None
        if principal is not None:
            access, ttl = await _mint(ctx, uow.conn, principal)
        await uow.commit()
    if principal is None:
        raise Problem(401, "Sign-in failed", "Email, password or code is wrong.")
    response = JSONResponse({"access_token": access, "expires_in": ttl, "token_type": "Bearer"},
                            headers={"Cache-Control": "no-store"})
    set_host_cookie(response, ctx.settings, SESSION_COOKIE, access, max_age=ttl)
    return response


# any token this issuer signed, whichever services it names: the holder ends its own session
_ANY_AUDIENCE = [*SERVICES, "identity"]


@router.delete("/v1/sessions/current", status_code=204, responses=problem_responses(401))
async def end_session(
    ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)],
) -> Response:
    """Sign out: the session of the bearer token presented ends, and with it every token of
    that session at every service (services/common/revocations.py says how soon)."""
    try:
        claims = decode_claims(
            credentials.credentials.strip() if credentials else "",
            keys=public_keys(ctx.keyset), audience=_ANY_AUDIENCE,
            issuer=ctx.settings.jwt_issuer)
    except InvalidToken:
        raise Problem(401, "Invalid or expired token",
                      headers={"WWW-Authenticate": 'Bearer realm="daybreak"'}) from None
    async with ctx.uow() as uow:
        await revoke_session(uow.conn, claims["sid"], reason="signed_out", now=ctx.clock(),
                             topic_prefix=ctx.settings.topic_prefix)
        await uow.commit()
    ctx.wake_relay()
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


def public_keys(keyset: Keyset) -> dict[str, Ed25519PublicKey]:
    """The issuer's own public keys by `kid`."""
    return {kid: key.public_key() for kid, key in zip(keyset.kids, keyset.keys, strict=True)}


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(ctx: Ctx) -> JSONResponse:
    """The public halves of the signing keys (active and not yet retired), by `kid`."""
    return JSONResponse(ctx.keyset.jwks(), headers={"Cache-Control": "public, max-age=300"})
