"""The admin API of the identity service: people and police clients (admin token, audience
`identity`). A new password, TOTP URI or client secret is in the answer once, never stored
in the clear nor logged; every change is recorded (services/identity/account_admin.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.incidents import LA_CODE_PATTERN
from services.common.auth_api import require_scope
from services.common.problems import Problem, documented_rules, problem_responses
from services.common.security import ROLES, Principal
from services.identity import account_admin as admin
from services.identity.accounts import AccountError, AccountExists
from services.identity.api import Ctx, IdentityContext

router = APIRouter(tags=["accounts"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]
_ERRORS = problem_responses(401, 403, 404, 409, 422)
_NO_STORE = {"Cache-Control": "no-store"}
# an address someone can be written to: no spaces or control characters, a dotted domain
EMAIL_PATTERN = r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+\.[^@\x00-\x20\x7f.]+$"
# what a person's role asks of the schools and LAs they act for (one field against another)
_ROLE_RULES = documented_rules(
    "a dsl or deputy_dsl acts for at least one school",
    "an la_officer acts for at least one LA",
    "a partnership acts for at least one LA and no school",
    "an auditor or admin acts for no school and no LA")
_CURSOR_RULES = documented_rules("cursor is one a page of this list gave")


def _fullmatch(pattern: str, message: str) -> Callable[[str], str]:
    """A check of the whole text against `pattern` (as the schema states it) that says why in
    words an admin reads in the portal, not as the pattern."""
    whole = re.compile(pattern.removeprefix("^").removesuffix("$"))

    def check(text: str) -> str:
        if not whole.fullmatch(text):
            raise ValueError(message)
        return text

    return check


def _states(pattern: str, max_length: int) -> Any:
    return Field(max_length=max_length, json_schema_extra={"pattern": pattern})


URN_PATTERN = r"^[0-9]{6,7}$"
FORCE_LETTERS = r"^[A-Za-z]{2,10}$"
Email = Annotated[str, _states(EMAIL_PATTERN, 320),
                  AfterValidator(_fullmatch(EMAIL_PATTERN, "email is not valid"))]
SchoolUrn = Annotated[str, _states(URN_PATTERN, 7),
                      AfterValidator(_fullmatch(URN_PATTERN, "a school URN is 6 or 7 digits"))]
LaCodeText = Annotated[str, _states(LA_CODE_PATTERN, 8), AfterValidator(
    _fullmatch(LA_CODE_PATTERN, "an LA code is 1 to 8 letters or digits"))]
ForceLetters = Annotated[str, _states(FORCE_LETTERS, 10), AfterValidator(
    _fullmatch(FORCE_LETTERS, "force code must be 2 to 10 letters"))]


class AccessIn(BaseModel):
    """What a person acts for: their role and its schools or LAs (all three, as they are to
    be; the person's sessions end when any of them changes)."""

    model_config = ConfigDict(extra="forbid")
    role: str = Field(max_length=32, json_schema_extra={"enum": list(ROLES)})
    school_urns: list[SchoolUrn] = Field(default_factory=list, max_length=100)
    la_codes: list[LaCodeText] = Field(default_factory=list, max_length=100)


class UserIn(AccessIn):
    """A person to create: their role and the schools or LAs they act for."""

    email: Email


class ClientIn(BaseModel):
    """A police client to create, for one force."""

    model_config = ConfigDict(extra="forbid")
    force_code: ForceLetters  # upper-cased when stored


class UserOut(BaseModel):
    """A person: no password, no TOTP data."""

    id: str
    email: str
    role: str
    school_urns: list[str]
    la_codes: list[str]
    created_at: str
    disabled_at: str | None


class UsersPage(BaseModel):
    """A page of people by e-mail address; `next_cursor` asks for the next (None: the last)."""

    users: list[UserOut]
    next_cursor: str | None


class NewUserOut(UserOut):
    """A created person, with their one-time password and TOTP URI (shown once)."""

    password: str
    totp_uri: str


class PasswordOut(BaseModel):
    """A person's new one-time password (shown once)."""

    user: UserOut
    password: str


class TotpOut(BaseModel):
    """A person's new TOTP enrolment URI (shown once)."""

    user: UserOut
    totp_uri: str


class ClientOut(BaseModel):
    """A police client: never its secret."""

    client_id: str
    force_code: str
    created_at: str
    disabled_at: str | None
    secret_rotated_at: str | None


class ClientsOut(BaseModel):
    """Every police client, by force."""

    clients: list[ClientOut]


class SecretOut(ClientOut):
    """A police client with its new secret (shown once)."""

    client_secret: str


def _once(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=_NO_STORE)


@router.get("/v1/users", response_model=UsersPage, responses=_ERRORS,
            openapi_extra=_CURSOR_RULES)
async def list_users(
    principal: Admin, ctx: Ctx,
    cursor: Annotated[str | None, Query(max_length=500, pattern=r"^[A-Za-z0-9_-]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=admin.MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """People by e-mail address, a page at a time."""
    async with ctx.engine.connect() as conn:
        found, after = await admin.list_users(conn, cursor=cursor, limit=limit)
    return {"users": found, "next_cursor": after}


@router.post("/v1/users", status_code=201, response_model=NewUserOut, responses=_ERRORS,
             openapi_extra=_ROLE_RULES)
async def create_user(body: UserIn, principal: Admin, ctx: Ctx) -> JSONResponse:
    """Create a person with a one-time password; the password and TOTP URI are shown once."""
    async with ctx.uow() as uow:
        try:
            view, password, uri = await admin.add_user(
                uow.conn, email=body.email, role=body.role, school_urns=body.school_urns,
                la_codes=body.la_codes, actor=principal.subject, now=ctx.clock(),
                vault=ctx.vault)
        except AccountExists as exc:
            raise Problem(409, "Conflict", str(exc)) from None
        except AccountError as exc:
            raise Problem(422, "Invalid account", str(exc)) from None
        await uow.commit()
    return _once(view | {"password": password, "totp_uri": uri}, 201)


@router.post("/v1/users/{user_id}/disable", response_model=UserOut, responses=_ERRORS)
async def disable_user(user_id: str, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Disable a person: they can no longer sign in, and their sessions end."""
    return await _set_user(ctx, user_id, principal, disabled=True)


@router.post("/v1/users/{user_id}/enable", response_model=UserOut, responses=_ERRORS)
async def enable_user(user_id: str, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Enable a disabled person again."""
    return await _set_user(ctx, user_id, principal, disabled=False)


@router.put("/v1/users/{user_id}/access", response_model=UserOut, responses=_ERRORS,
            openapi_extra=_ROLE_RULES)
async def set_access(user_id: str, body: AccessIn, principal: Admin, ctx: Ctx
                     ) -> dict[str, Any]:
    """Change a person's role, schools and LAs; if anything changed, their sessions end at
    every service and they sign in again."""
    async with ctx.uow() as uow:
        try:
            view = await admin.set_user_access(
                uow.conn, user_id[:64], role=body.role, school_urns=body.school_urns,
                la_codes=body.la_codes, actor=principal.subject, now=ctx.clock(),
                topic_prefix=ctx.settings.topic_prefix)
        except AccountError as exc:
            raise Problem(422, "Invalid account", str(exc)) from None
        await uow.commit()
    ctx.wake_relay()
    return view


@router.post("/v1/users/{user_id}/reset-password", response_model=PasswordOut,
             responses=_ERRORS)
async def reset_password(user_id: str, principal: Admin, ctx: Ctx) -> JSONResponse:
    """Replace a person's password with a new one-time password, shown once; their
    sessions end."""
    async with ctx.uow() as uow:
        view, password = await admin.reset_password(
            uow.conn, user_id[:64], actor=principal.subject, now=ctx.clock(),
            topic_prefix=ctx.settings.topic_prefix)
        await uow.commit()
    ctx.wake_relay()
    return _once({"user": view, "password": password})


@router.post("/v1/users/{user_id}/reenrol-totp", response_model=TotpOut, responses=_ERRORS)
async def reenrol_totp(user_id: str, principal: Admin, ctx: Ctx) -> JSONResponse:
    """Give a person a new TOTP secret; its URI is shown once."""
    async with ctx.uow() as uow:
        view, uri = await admin.reenrol_totp(uow.conn, user_id[:64], actor=principal.subject,
                                             now=ctx.clock(), vault=ctx.vault)
        await uow.commit()
    return _once({"user": view, "totp_uri": uri})


@router.get("/v1/clients", response_model=ClientsOut, responses=_ERRORS)
async def list_clients(principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Every police client, by force."""
    async with ctx.engine.connect() as conn:
        return {"clients": await admin.list_clients(conn)}


@router.post("/v1/clients", status_code=201, response_model=SecretOut, responses=_ERRORS)
async def create_client(body: ClientIn, principal: Admin, ctx: Ctx) -> JSONResponse:
    """Create a police client for a force; its secret is shown once."""
    async with ctx.uow() as uow:
        try:
            view, secret = await admin.add_client(uow.conn, force_code=body.force_code,
                                                  actor=principal.subject, now=ctx.clock())
        except AccountError as exc:
            raise Problem(422, "Invalid client", str(exc)) from None
        await uow.commit()
    return _once(view | {"client_secret": secret}, 201)


@router.post("/v1/clients/{client_id}/disable", response_model=ClientOut, responses=_ERRORS)
async def disable_client(client_id: str, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Disable a police client: it can no longer get tokens, and those it has are refused."""
    return await _set_client(ctx, client_id, principal, disabled=True)


@router.post("/v1/clients/{client_id}/enable", response_model=ClientOut, responses=_ERRORS)
async def enable_client(client_id: str, principal: Admin, ctx: Ctx) -> dict[str, Any]:
    """Enable a disabled police client again."""
    return await _set_client(ctx, client_id, principal, disabled=False)


@router.post("/v1/clients/{client_id}/rotate-secret", response_model=SecretOut,
             responses=_ERRORS)
async def rotate_secret(client_id: str, principal: Admin, ctx: Ctx) -> JSONResponse:
    """Replace a client's secret; the new one is shown once and the old one, and the tokens
    got with it, stop working."""
    async with ctx.uow() as uow:
        view, secret = await admin.rotate_secret(uow.conn, client_id, actor=principal.subject,
                                                 now=ctx.clock(),
                                                 topic_prefix=ctx.settings.topic_prefix)
        await uow.commit()
    ctx.wake_relay()
    return _once(view | {"client_secret": secret})


async def _set_user(ctx: IdentityContext, user_id: str, principal: Principal, *, disabled: bool
                    ) -> dict[str, Any]:
    async with ctx.uow() as uow:
        view = await admin.set_user_disabled(uow.conn, user_id[:64], disabled=disabled,
                                             actor=principal.subject, now=ctx.clock(),
                                             topic_prefix=ctx.settings.topic_prefix)
        await uow.commit()
    ctx.wake_relay()
    return view


async def _set_client(ctx: IdentityContext, client_id: str, principal: Principal, *, disabled: bool
                      ) -> dict[str, Any]:
    async with ctx.uow() as uow:
        view = await admin.set_client_disabled(uow.conn, client_id, disabled=disabled,
                                               actor=principal.subject, now=ctx.clock(),
                                               topic_prefix=ctx.settings.topic_prefix)
        await uow.commit()
    ctx.wake_relay()
    return view
