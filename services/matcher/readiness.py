"""The registry's readiness: every configuration that would leave a reported child with nobody
told (an LA nobody answers for, a school whose notifications reach nobody)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.doctor import ReadinessProblem
from services.matcher.directory import any_of
from services.matcher.models import local_authorities, schools

# every code this module reports, in the order an entity's problems are listed
LA_CODES = ("la_no_safeguarding_contact", "la_no_duty_manager_contact")
SCHOOL_CODES = ("school_la_missing", "school_no_dsl_contact", "school_no_deputy_dsl_contact")
CODES = LA_CODES + SCHOOL_CODES
_NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True, slots=True)
class LaFacts:
    """What readiness needs of a local authority."""

    la_code: str
    name: str
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class SchoolFacts:
    """What readiness needs of a school."""

    urn: str
    name: str
    la_code: str
    participates: bool
    status: str
    roles: frozenset[str]
    la_registered: bool


def roles_of(contacts: Iterable[Mapping[str, Any]] | None) -> frozenset[str]:
    """The roles a contact list covers."""
    return frozenset(str(c.get("role", "")) for c in contacts or () if c.get("email"))


def _label(name: str) -> str:
    # a name from a GIAS file may hold a line break: each problem stays one line
    return _NOT_PRINTABLE.sub(" ", name).strip()


def la_problems(la: LaFacts) -> list[ReadinessProblem]:
    """An LA's own problems: nobody for its children on no roll, nobody to escalate to."""
    subject, name = f"la:{la.la_code}", _label(la.name)
    found = []
    if "safeguarding" not in la.roles:
        found.append(ReadinessProblem(
            "la_no_safeguarding_contact", subject,
            f"{name} has no safeguarding contact: children on no roll and items addressed "
            "to the LA reach nobody"))
    if "duty_manager" not in la.roles:
        found.append(ReadinessProblem(
            "la_no_duty_manager_contact", subject,
            f"{name} has no duty_manager contact: nobody is called when an item nears its "
            "deadline"))
    return found


def school_problems(school: SchoolFacts) -> list[ReadinessProblem]:
    """An open school's problems: its LA unknown; taking part with no DSL or no deputy."""
    if school.status == "closed":
        return []
    subject, name = f"school:{school.urn}", _label(school.name)
    found = []
    if not school.la_registered:
        # a non-participating school's children go to its LA too, so every open school counts
        found.append(ReadinessProblem(
            "school_la_missing", subject,
            f"{name} names LA {school.la_code}, which is not in the registry: what reaches "
            "the LA about its children reaches nobody"))
    if not school.participates:
        return found
    if "dsl" not in school.roles:
        found.append(ReadinessProblem(
            "school_no_dsl_contact", subject,
            f"{name} takes part but has no DSL contact: its notifications reach nobody"))
    if "deputy_dsl" not in school.roles:
        found.append(ReadinessProblem(
            "school_no_deputy_dsl_contact", subject,
            f"{name} takes part but has no deputy_dsl contact: an unacknowledged "
            "notification cannot escalate to a deputy"))
    return found


async def registry_problems(conn: AsyncConnection, *, now: datetime) -> list[ReadinessProblem]:
    """Every LA's problems (by code), then every school's (by URN): one line each.

    `now` is the moment of the check; none of today's checks depends on the date yet.
    """
    return [*await la_readiness(conn), *await school_readiness(conn)]


async def la_readiness(conn: AsyncConnection, la_codes: Sequence[str] | None = None
                       ) -> list[ReadinessProblem]:
    """The problems of the named LAs (every LA when None), by code."""
    query = select(local_authorities.c.la_code, local_authorities.c.name,
                   local_authorities.c.contacts).order_by(local_authorities.c.la_code)
    if la_codes is not None:
        query = query.where(local_authorities.c.la_code == any_of(la_codes))
    rows = (await conn.execute(query)).all()
    return [p for r in rows for p in la_problems(LaFacts(r.la_code, r.name, roles_of(r.contacts)))]


async def school_readiness(conn: AsyncConnection, urns: Sequence[str] | None = None
                           ) -> list[ReadinessProblem]:
    """The problems of the named schools (every school when None), by URN."""
    s = schools.c
    query = (select(s.urn, s.name, s.la_code, s.participates, s.status, s.contacts,
                    local_authorities.c.la_code.is_not(None).label("la_registered"))
             .select_from(schools.outerjoin(
                 local_authorities, local_authorities.c.la_code == s.la_code))
             .where(s.status != "closed").order_by(s.urn))
    if urns is not None:
        query = query.where(s.urn == any_of(urns))
    rows = (await conn.execute(query)).all()
    return [p for r in rows for p in school_problems(SchoolFacts(
        r.urn, r.name, r.la_code, r.participates, r.status, roles_of(r.contacts),
        r.la_registered))]
