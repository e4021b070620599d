"""`POST /v1/token`, `POST /v1/sessions`, `DELETE /v1/sessions/current` and
`GET /.well-known/jwks.json`: the only issuer. And a person's own sessions (ASVS 7.5.2):
`GET /v1/sessions` lists them, `POST /v1/sessions/{sid}/end` and
`POST /v1/sessions/end-others` end them, after the password and code are asked again."""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.incidents import NO_NUL
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
from services.common.paging import CURSOR_RULES, DEFAULT_LIMIT, Cursor, Limit
from services.common.problems import Problem, problem_responses
from services.common.relay import CLIENT_ADDRESS_HEADER
from services.common.security import SERVICES, InvalidToken, Principal, decode_claims
from services.identity.accounts import SignIn, SignInPolicy, authenticate_client, authenticate_user
from services.identity.keys import Keyset
from services.identity.models import users
from services.identity.passwords import GateFull, subject_hash
from services.identity.security_events import (
    Attempt,
    client_address,
    printable_agent,
    record_event,
)
from services.identity.sessions import (
    end_others,
    end_own,
    is_live,
    list_own,
    open_session,
    revoke_session,
)
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
T = TypeVar("T")


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
    then: Callable[[AsyncConnection, Principal, Attempt], Awaitable[T]],
) -> tuple[SignIn, T | None]:
    """One sign-in check in a gate slot and its own transaction, committed whatever it
    decided (the failure count and the security event), and, when it let the principal in,
    `then` in that same transaction (a token in a new session, or the sessions ended);
    raises GateFull when busy."""
    peer = request.client.host if request.client else None
    attempt = Attempt(client_address=client_address(
        peer, request.headers.get(CLIENT_ADDRESS_HEADER), ctx.sign_in.trusted_proxies),
        user_agent=printable_agent(request.headers.get("user-agent")), at=ctx.clock())
    try:
        async with ctx.sign_in.gate.admit(), ctx.uow() as uow:
            decided = await check(uow.conn, attempt)
            done = (None if decided.principal is None
                    else await then(uow.conn, decided.principal, attempt))
            await uow.commit()
    except GateFull:
        log.warning("sign-in refused: too many waiting", extra={
            "client_address": attempt.client_address})
        raise
    return decided, done


def _busy() -> Problem:
    return Problem(503, "Sign-in is busy", "Try again in a few seconds.", headers=_BUSY)


def _refuse_throttled(decided: SignIn) -> None:
    """429 when the check was refused for the failures before it (a person's sign-in or
    their password asked again: the same budgets)."""
    if decided.throttled:
        raise Problem(429, "Too many sign-in attempts", "Try again later.",
                      headers={"Retry-After": "60"})


def _minting(ctx: IdentityContext
             ) -> Callable[[AsyncConnection, Principal, Attempt], Awaitable[tuple[str, int]]]:
    return lambda conn, principal, attempt: _mint(ctx, conn, principal, attempt)


async def _mint(ctx: IdentityContext, conn: AsyncConnection, principal: Principal,
                attempt: Attempt) -> tuple[str, int]:
    """A token for the principal in a new session (kept in the caller's transaction)."""
    settings, now = ctx.settings, ctx.clock()
    ttl = (settings.client_token_ttl_seconds if principal.kind == "client"
           else settings.user_token_ttl_seconds)
    sid = await open_session(conn, principal, now=now, ttl_s=ttl, attempt=attempt)
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
            policy=ctx.sign_in), _minting(ctx))
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
            policy=ctx.sign_in, vault=ctx.vault), _minting(ctx))
    except GateFull:
        raise _busy() from None
    _refuse_throttled(decided)
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
    claims = _claims(ctx, credentials)
    async with ctx.uow() as uow:
        await revoke_session(uow.conn, claims["sid"], reason="signed_out", now=ctx.clock(),
                             topic_prefix=ctx.settings.topic_prefix)
        await uow.commit()
    ctx.wake_relay()
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


def _claims(ctx: IdentityContext, credentials: HTTPAuthorizationCredentials | None
            ) -> dict[str, Any]:
    """The claims of a bearer token this issuer signed, for any audience; 401 otherwise."""
    try:
        return decode_claims(credentials.credentials.strip() if credentials else "",
                             keys=public_keys(ctx.keyset), audience=_ANY_AUDIENCE,
                             issuer=ctx.settings.jwt_issuer)
    except InvalidToken:
        raise _unauthenticated() from None


def _unauthenticated() -> Problem:
    return Problem(401, "Invalid or expired token",
                   headers={"WWW-Authenticate": 'Bearer realm="daybreak"'})
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)]


async def _person(ctx: IdentityContext, credentials: HTTPAuthorizationCredentials | None
                  ) -> dict[str, Any]:
    """The claims of a person's token whose session is live (checked here, at once); 401
    for any other token, 403 for a police client's (it has no password to ask again)."""
    claims = _claims(ctx, credentials)
    async with ctx.engine.connect() as conn:
        live = await is_live(conn, str(claims.get("sid", "")), now=ctx.clock())
    if not live:
        raise _unauthenticated()
    if claims.get("kind") != "user":
        raise Problem(403, "Forbidden", "Only people see and end their sessions here.")
    return claims


class SessionOut(BaseModel):
    """One of the caller's live sessions: when and how it was signed in, and from where."""

    id: str = Field(description="the session's id (`sid` in its tokens)")
    started_at: str
    expires_at: str
    method: str | None = Field(description="`password`; null for a session from before 0028")
    client_address: str | None = Field(description="where the sign-in came from")
    user_agent: str | None = Field(description="the browser or program that signed in")
    current: bool = Field(description="the session of the token that asked")


class SessionsOut(BaseModel):
    """A page of the caller's own live sessions, newest first."""

    items: list[SessionOut]
    next_cursor: str | None


class ReauthIn(BaseModel):
    """The caller's password and a current TOTP code, asked again before a session ends."""

    model_config = ConfigDict(extra="forbid")
    password: str = Field(max_length=1024, pattern=NO_NUL)
    totp: str = Field(pattern=r"^[0-9]{6}$")


class EndedOut(BaseModel):
    """How many sessions were ended."""

    ended: int


_END_ERRORS = problem_responses(401, 403, 404, 422, 429, 503)


@router.get("/v1/sessions", response_model=SessionsOut, tags=["sessions"],
            responses=problem_responses(401, 403, 422), openapi_extra=CURSOR_RULES)
async def own_sessions(ctx: Ctx, credentials: Bearer, limit: Limit = DEFAULT_LIMIT,
                       cursor: Cursor = None) -> JSONResponse:
    """The caller's own live sessions (any token this issuer signed for a person), newest
    first, the one asking marked `current`; `limit` rows from `cursor`."""
    claims = await _person(ctx, credentials)
    async with ctx.engine.connect() as conn:
        items, next_cursor = await list_own(conn, str(claims["sub"]), current=str(claims["sid"]),
                                            now=ctx.clock(), limit=limit, cursor=cursor)
    return JSONResponse({"items": items, "next_cursor": next_cursor},
                        headers={"Cache-Control": "no-store"})


@router.post("/v1/sessions/{sid}/end", status_code=204, tags=["sessions"],
             responses=_END_ERRORS)
async def end_one(sid: str, body: ReauthIn, request: Request, ctx: Ctx,
                  credentials: Bearer) -> Response:
    """End one of the caller's own sessions (its tokens are refused at once here and at
    every service as sign-out's are), after the password and code are asked again; 404 for
    a session that is not the caller's, unknown or over."""
    claims = await _person(ctx, credentials)
    subject, prefix = str(claims["sub"]), ctx.settings.topic_prefix
    ended = await _reauthenticated(ctx, request, subject, body, lambda conn: end_own(
        conn, subject, sid, now=ctx.clock(), topic_prefix=prefix))
    if not ended:
        raise Problem(404, "Not found", "You have no such session.")
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.post("/v1/sessions/end-others", response_model=EndedOut, tags=["sessions"],
             responses=_END_ERRORS)
async def end_the_others(body: ReauthIn, request: Request, ctx: Ctx,
                         credentials: Bearer) -> JSONResponse:
    """End every session of the caller's but the one asking, after the password and code
    are asked again; how many were ended."""
    claims = await _person(ctx, credentials)
    subject, prefix = str(claims["sub"]), ctx.settings.topic_prefix
    ended = await _reauthenticated(ctx, request, subject, body, lambda conn: end_others(
        conn, subject, keep=str(claims["sid"]), now=ctx.clock(), topic_prefix=prefix))
    return JSONResponse({"ended": ended}, headers={"Cache-Control": "no-store"})


async def _reauthenticated(
    ctx: IdentityContext, request: Request, subject: str, body: ReauthIn,
    end: Callable[[AsyncConnection], Awaitable[int | bool]],
) -> int:
    """`end` once the person's password and code are right (checked, throttled and recorded
    as a sign-in is, as `reauthentication`), in the same transaction, its end recorded as a
    `session_end` security event; how many sessions it ended. 403 for a wrong password or
    code, 429 when throttled, 503 when the sign-in gate is full."""
    async def check(conn: AsyncConnection, attempt: Attempt) -> SignIn:
        email = (await conn.execute(select(users.c.email).where(
            users.c.user_id == uuid.UUID(subject)))).scalar_one_or_none()
        if email is None:
            return SignIn()
        return await authenticate_user(conn, email=email, password=body.password,
                                       totp=body.totp, attempt=attempt, policy=ctx.sign_in,
                                       vault=ctx.vault, kind="reauthentication")

    async def then(conn: AsyncConnection, principal: Principal, attempt: Attempt) -> int:
        ended = int(await end(conn))
        if ended:
            await record_event(conn, attempt, kind="session_end", outcome="success",
                               subject_hash=subject_hash(f"user:{principal.email}"))
        return ended

    try:
        decided, ended = await _check(ctx, request, check, then)
    except GateFull:
        raise _busy() from None
    _refuse_throttled(decided)
    if decided.principal is None or decided.principal.subject != subject or ended is None:
        raise Problem(403, "Password or code is wrong",
                      "Enter your password and a new code from your authenticator app.")
    if ended:
        ctx.wake_relay()
    return ended


def public_keys(keyset: Keyset) -> dict[str, Ed25519PublicKey]:
    """The issuer's own public keys by `kid`."""
    return {kid: key.public_key() for kid, key in zip(keyset.kids, keyset.keys, strict=True)}


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(ctx: Ctx) -> JSONResponse:
    """The public halves of the signing keys (active and not yet retired), by `kid`."""
    return JSONResponse(ctx.keyset.jwks(), headers={"Cache-Control": "public, max-age=300"})
