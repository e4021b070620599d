"""`POST /v1/token`, `POST /v1/sessions`, `DELETE /v1/sessions/current` and
`GET /.well-known/jwks.json`: the only issuer."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

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
from services.common.relay import CLIENT_ADDRESS_HEADER
from services.common.security import SERVICES, InvalidToken, Principal, decode_claims
from services.identity.accounts import SignIn, SignInPolicy, authenticate_client, authenticate_user
from services.identity.keys import Keyset
from services.identity.passwords import GateFull
from services.identity.security_events import Attempt, client_address, printable_agent
from services.identity.sessions import open_session, revoke_session
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


async def _check(
    ctx: IdentityContext, request: Request,
    check: Callable[[AsyncConnection, Attempt], Awaitable[SignIn]],
) -> tuple[SignIn, tuple[str, int] | None]:
    """One sign-in check in a gate slot and its own transaction, committed whatever it
    decided (the failure count and the security event), and, when it let the principal in,
    a token in a new session opened in that same transaction; raises GateFull when busy."""
    peer = request.client.host if request.client else None
    attempt = Attempt(client_address=client_address(
        peer, request.headers.get(CLIENT_ADDRESS_HEADER), ctx.sign_in.trusted_proxies),
        user_agent=printable_agent(request.headers.get("user-agent")), at=ctx.clock())
    try:
        async with ctx.sign_in.gate.admit(), ctx.uow() as uow:
            decided = await check(uow.conn, attempt)
            minted = (None if decided.principal is None
                      else await _mint(ctx, uow.conn, decided.principal))
            await uow.commit()
    except GateFull:
        log.warning("sign-in refused: too many waiting", extra={
            "client_address": attempt.client_address})
        raise
    return decided, minted


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
        decided, minted = await _check(ctx, request, lambda conn, attempt: authenticate_client(
            conn, client_id=creds[0][:128], secret=creds[1][:256], attempt=attempt,
            policy=ctx.sign_in))
    except GateFull:
        return _oauth_error(503, "temporarily_unavailable", _BUSY)
    if decided.throttled:
        return _oauth_error(429, "slow_down", {"Retry-After": "60"})
    principal = decided.principal
    if principal is None or minted is None:
        return _oauth_error(401, "invalid_client", _BASIC_CHALLENGE)
    access, ttl = minted
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
        decided, minted = await _check(ctx, request, lambda conn, attempt: authenticate_user(
            conn, email=body.email, password=body.password, totp=body.totp, attempt=attempt,
            policy=ctx.sign_in, vault=ctx.vault))
    except GateFull:
        raise Problem(503, "Sign-in is busy", "Try again in a few seconds.",
                      headers=_BUSY) from None
    if decided.throttled:
        raise Problem(429, "Too many sign-in attempts", "Try again later.",
                      headers={"Retry-After": "60"})
    if decided.principal is None or minted is None:
        raise Problem(401, "Sign-in failed", "Email, password or code is wrong.")
    access, ttl = minted
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
