"""The LA's partner directory: whom its schools bring in, per need type (name, phone, e-mail,
web address, hours, guidance). The LA's officers keep it (`PUT` replaces the whole list); its
officers and the DSLs of its schools read it. No child data.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    UrlConstraints,
)
from sqlalchemy import Column, DateTime, SmallInteger, String, Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.notifications import NEED_TYPES, NeedType
from services.common.auth_api import require_scope
from services.common.db import metadata
from services.common.problems import Problem, documented_rules, problem_responses
from services.common.security import Principal
from services.notifier.context import NotifierCtx
from services.notifier.models import schools

partners = Table(
    "partners",
    metadata,
    Column("la_code", String(8), primary_key=True),
    Column("position", SmallInteger, primary_key=True),
    Column("need_type", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("phone", String(32)),
    Column("email", String(254)),
    Column("web", String(500)),
    Column("hours", String(200)),
    Column("guidance", String(1000)),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("changed_by", String(64), nullable=False),
    schema="notifier",
)
MAX_PARTNERS = 200
GUIDANCE_MAX = 1000
FIELDS = ("need_type", "name", "phone", "email", "web", "hours", "guidance")
# a UK number as people write it: spaces, hyphens and brackets aside, +44 for the leading 0
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_NATIONAL = re.compile(r"0\d{9,10}")
_SHORT = re.compile(r"101|111|999|116\d{3}")  # police non-emergency, NHS 111, helplines
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+")


def uk_phone_digits(text: str) -> str:
    """The number's digits ('0121 303 1234' → '01213031234'); ValueError if not a UK number."""
    digits = _PHONE_SEPARATORS.sub("", text)
    if digits.startswith("+44"):
        digits = "0" + digits[3:].removeprefix("0")
    if not (_NATIONAL.fullmatch(digits) or _SHORT.fullmatch(digits)):
        raise ValueError("must be a UK telephone number")
    return digits


def _phone(text: str) -> str:
    uk_phone_digits(text)
    return text


def _email(text: str) -> str:
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        raise ValueError("must be an e-mail address")
    return text


Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                        pattern=r"^[^\x00-\x1f]*$")]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32),
                  AfterValidator(_phone)]
Email = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_email)]
HttpsUrl = Annotated[HttpUrl, UrlConstraints(allowed_schemes=["https"], max_length=500)]
Guidance = Annotated[str, StringConstraints(strip_whitespace=True, max_length=GUIDANCE_MAX,
                                            pattern=r"^[^\x00]*$")]


class Partner(BaseModel):
    """One entry of the directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    need_type: NeedType
    name: Line
    phone: Phone | None = None
    email: Email | None = None
    web: HttpsUrl | None = None
    hours: Line | None = None
    guidance: Guidance | None = None

    def row(self) -> dict[str, Any]:
        """The entry as stored."""
        return self.model_dump(mode="json")


class PartnersIn(BaseModel):
    """`PUT /v1/partners/{la_code}`: the whole directory, in the order people read it."""

    model_config = ConfigDict(extra="forbid")
    partners: list[Partner] = Field(max_length=MAX_PARTNERS)


async def partners_of(conn: AsyncConnection, la_code: str) -> list[dict[str, Any]]:
    """The LA's directory in its order."""
    p = partners.c
    rows = await conn.execute(select(*(p[f] for f in FIELDS)).where(p.la_code == la_code)
                              .order_by(p.position))
    return [dict(r._mapping) for r in rows]


def by_need(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The entries grouped by need type, in NEED_TYPES' order, only types that have any."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        grouped[entry["need_type"]].append(entry)
    return {need: grouped[need] for need in NEED_TYPES if grouped.get(need)}


async def replace_partners(conn: AsyncConnection, la_code: str, entries: list[Partner], *,
                           by: Principal, at: datetime) -> None:
    """The LA's directory becomes `entries` (in the caller's transaction)."""
    await conn.execute(delete(partners).where(partners.c.la_code == la_code))
    if entries:
        await conn.execute(insert(partners), [
            e.row() | {"la_code": la_code, "position": i, "changed_at": at,
                       "changed_by": by.subject} for i, e in enumerate(entries)])


async def school_las(conn: AsyncConnection, principal: Principal) -> set[str]:
    """The LAs of the person's schools."""
    if not principal.school_urns:
        return set()
    rows = await conn.execute(select(schools.c.la_code).where(
        schools.c.urn.in_(sorted(principal.school_urns))))
    return {r.la_code for r in rows}


async def may_read(conn: AsyncConnection, principal: Principal, la_code: str) -> bool:
    """The LA's officers and the DSLs of its schools read its directory."""
    if principal.role == "la_officer" and la_code in principal.la_codes:
        return True
    return la_code in await school_las(conn, principal)


def may_edit(principal: Principal, la_code: str) -> bool:
    """Only the LA's own officers keep its directory."""
    return principal.role == "la_officer" and la_code in principal.la_codes


router = APIRouter(prefix="/v1/partners", tags=["partner directory"],
                   responses=problem_responses(401, 403, 404))
Reader = Annotated[Principal, Depends(require_scope("notifications:read"))]


async def officer(principal: Reader) -> Principal:
    """LA officers only (refused before the body is read)."""
    if principal.role != "la_officer":
        raise Problem(403, "Forbidden", "Only the LA's officers keep its partner directory.")
    return principal


Editor = Annotated[Principal, Depends(officer)]


@router.get("/{la_code}")
async def get_partners(la_code: str, principal: Reader, ctx: NotifierCtx) -> dict[str, Any]:
    """The LA's partner directory (its officers, and the DSLs of its schools)."""
    async with ctx.engine.connect() as conn:
        if not await may_read(conn, principal, la_code):
            raise Problem(404, "Not found")
        return {"la_code": la_code, "partners": await partners_of(conn, la_code)}


@router.put("/{la_code}", openapi_extra=documented_rules(
    "phone is a UK number (spaces, hyphens and brackets aside, +44 for the leading 0): 0 and "
    "9 or 10 digits, or 101, 111, 999, 116 and 3 digits",
    "email is an address (at most 64 characters before @, a dotted domain of letters, digits "
    "and hyphens, at most 254 in all)"))
async def put_partners(la_code: str, body: PartnersIn, principal: Editor,
                       ctx: NotifierCtx) -> dict[str, Any]:
    """Replace the LA's partner directory (its own officers only)."""
    if not may_edit(principal, la_code):
        raise Problem(404, "Not found")
    async with ctx.uow() as uow:
        await replace_partners(uow.conn, la_code, body.partners, by=principal, at=ctx.clock())
        await uow.commit()
    return {"la_code": la_code, "partners": [p.row() for p in body.partners]}
