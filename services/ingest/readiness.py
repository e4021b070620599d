"""Forces that would leave a child with nobody told: the ingest half of `daybreak doctor`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.context import AppContext
from services.common.db import UnitOfWork
from services.common.doctor import ReadinessProblem
from services.common.metrics import observe_readiness_problems
from services.ingest.models import forces

CODES = ("force_no_default_la", "force_no_profile")


async def force_problems(
    conn: AsyncConnection, *, now: datetime, client_forces: Iterable[str] = ()
) -> list[ReadinessProblem]:
    """Each force with no default LA, and each force a police client reports for that has no
    profile at all (`client_forces`: the forces of enabled clients, which only the identity
    service can read; the CLI gives them, the readiness endpoint cannot)."""
    rows = (await conn.execute(select(forces.c.force_code, forces.c.default_la_code))).all()
    profiles = {row.force_code: row.default_la_code for row in rows}
    problems = [_no_default_la(code) for code, la in profiles.items() if la is None]
    problems += [_no_profile(code) for code in set(client_forces) - profiles.keys()]
    return sorted(problems, key=lambda p: (p.subject, p.code))


def _no_default_la(force_code: str) -> ReadinessProblem:
    return ReadinessProblem(
        "force_no_default_la", f"force:{force_code}",
        "no default local authority: its incidents are refused until PUT "
        f"/v1/forces/{force_code} sets default_la_code")


def _no_profile(force_code: str) -> ReadinessProblem:
    return ReadinessProblem(
        "force_no_profile", f"force:{force_code}",
        "a police client reports for this force but it has no profile: its incidents are "
        f"refused until PUT /v1/forces/{force_code} registers it with default_la_code")


async def readiness_report(uow: UnitOfWork, *, now: datetime) -> dict[str, Any]:
    """The body of `GET /v1/admin/readiness`: ready when no force would leave a child alone."""
    async with uow:
        problems = await force_problems(uow.conn, now=now)
        rows = (await uow.conn.execute(select(forces.c.force_code, forces.c.default_la_code)
                                       .where(forces.c.default_la_code.is_not(None)))).all()
    # each force's default LA, so the matcher can check it against its registry
    return {"ready": not problems, "problems": [p.as_dict() for p in problems],
            "default_las": {row.force_code: row.default_la_code for row in rows}}


def observe_readiness(ctx: AppContext) -> None:
    """Forces that would leave a child with nobody told, by problem code."""
    observe_readiness_problems(ctx, CODES, lambda conn, now: force_problems(conn, now=now))
