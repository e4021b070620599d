"""The sign-in contract every service shares, and the bearer dependencies routes use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Form
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from schemas.incidents import NO_NUL
from services.common.context import AppContext, get_ctx
from services.common.jwks import KeysUnavailable
from services.common.problems import Problem, problem_responses
from services.common.security import InvalidToken, Principal
from services.common.settings import Settings

# `__Host-`: the browser keeps it only if it is Secure, for Path=/ and with no Domain, so no
# other host (a sibling subdomain, a man in the middle on http) can set or shadow it. With
# `cookie_secure` off (plain http in development and the browser tests) the prefix cannot be
# used, and the cookie goes by its plain name; nothing answers to the other name.
SESSION_COOKIE = "__Host-daybreak_session"
PLAIN_SESSION_COOKIE = "daybreak_session"
_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="daybreak"'}
# RFC 6749 section 5.2: the token endpoint answers errors as `{"error": ...}`; only a body
# that is no form at all gets the problem+json 400 every route gives
_OAUTH_ERROR: dict[str, Any] = {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}
TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unsupported grant type, or not a form",
          "content": _OAUTH_ERROR | problem_responses(400)[400]["content"]},
    401: {"description": "Invalid client", "content": _OAUTH_ERROR},
    429: {"description": "Too many attempts", "content": _OAUTH_ERROR},
}
SESSION_RESPONSES = problem_responses(401, 429)
# the token endpoint's client authentication (RFC 6749 section 2.3.1), declared for the docs:
# the route reads the header itself so that every refusal is an OAuth2 error body
CLIENT_SCHEME = "client"
SECURITY_SCHEMES: dict[str, Any] = {CLIENT_SCHEME: {
    "type": "http", "scheme": "basic",
    "description": "A police client's id and secret (`daybreak clients create`)."}}
TOKEN_OPENAPI: dict[str, Any] = {"security": [{CLIENT_SCHEME: []}]}
GrantType = Annotated[str, Form(max_length=64, json_schema_extra={
    "enum": ["client_credentials"]}, description="Only `client_credentials`; another is "
    "refused with 400 `unsupported_grant_type`.")]


def host_cookie(settings: Settings, name: str) -> str:
    """A cookie's name under the deployment's `cookie_secure`: `__Host-` prefixed when on."""
    plain = name.removeprefix("__Host-")
    return f"__Host-{plain}" if settings.cookie_secure else plain


def session_cookie(settings: Settings) -> str:
    """The session cookie's name here."""
    return host_cookie(settings, SESSION_COOKIE)


def set_host_cookie(response: Response, settings: Settings, name: str, value: str, *,
                    max_age: int | None = None) -> None:
    """Set a cookie as every Daybreak cookie is: HttpOnly, SameSite=Strict, Path=/, no
    Domain, Secure (and `__Host-`) when `cookie_secure` is on."""
    response.set_cookie(host_cookie(settings, name), value, max_age=max_age, httponly=True,
                        secure=settings.cookie_secure, samesite="strict", path="/")


def clear_host_cookie(response: Response, settings: Settings, name: str) -> None:
    """Make the browser forget a cookie `set_host_cookie` set."""
    response.delete_cookie(host_cookie(settings, name), path="/", httponly=True,
                           secure=settings.cookie_secure, samesite="strict")


class SessionIn(BaseModel):
    """Sign-in body: password and a current TOTP code."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320, pattern=NO_NUL)
    password: str = Field(max_length=1024, pattern=NO_NUL)
    totp: str = Field(pattern=r"^[0-9]{6}$")


class TokenOut(BaseModel):
    """A bearer token."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str | None = None


async def verify_bearer(ctx: AppContext, token: str) -> Principal:
    """The principal of a token for this service; 401 when refused, 503 with no keys yet."""
    try:
        return await ctx.tokens().verify(token)
    except InvalidToken:
        raise Problem(401, "Invalid or expired token", headers=_BEARER_CHALLENGE) from None
    except KeysUnavailable:
        raise Problem(503, "Service unavailable", "The token issuer's keys are unavailable.",
                      headers={"Retry-After": "5"}) from None


# declares the bearer scheme on every route that needs a token; the refusal is ours (401)
_BEARER = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="A token from `POST /v1/token` (police clients) or "
                                 "`POST /v1/sessions` (people).")
BEARER_SCHEME = _BEARER  # for a route that reads the bearer token itself


async def current_principal(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Principal:
    """The caller of an API route, from its bearer token (cookies are for the portal only)."""
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise Problem(401, "Authentication required", headers=_BEARER_CHALLENGE)
    return await verify_bearer(ctx, token)


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only principals holding `scope`."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        return holding(principal, scope)

    return dependency


def holding(principal: Principal, scope: str) -> Principal:
    """The principal, if it holds `scope`; else 403."""
    if scope not in principal.scopes:
        raise Problem(403, "Forbidden", "This credential may not do that.")
    return principal
