"""`daybreak doctor`: every configuration problem that would leave a reported child with nobody
told, from each service that owns configuration, and the checks across them.

Each service's half reads with that service's own role: the forces as ingest, the police
clients as identity, the registry as the matcher.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import standalone_uow
from services.common.doctor import ReadinessProblem
from services.common.settings import Settings
from services.identity.models import api_clients
from services.ingest.models import forces
from services.ingest.readiness import force_problems
from services.matcher.readiness import default_la_problems


class RegistryCheck(Protocol):
    """The matcher's half: its registry's problems (services.matcher.readiness)."""

    async def __call__(self, conn: AsyncConnection, *, now: datetime
                       ) -> list[ReadinessProblem]: ...


async def configuration_problems(
    settings: Settings, *, now: datetime, registry_problems: RegistryCheck
) -> list[ReadinessProblem]:
    """Every problem, sorted by what it is about: forces, registry, and each force's default
    LA against the registry."""
    problems, defaults = await forces_problems(settings, now=now)
    async with standalone_uow(settings, "matcher") as uow:
        problems += await registry_problems(uow.conn, now=now)
        problems += await default_la_problems(uow.conn, defaults)
    return sorted(problems, key=lambda p: (p.subject, p.code, p.message))


async def forces_problems(
    settings: Settings, *, now: datetime
) -> tuple[list[ReadinessProblem], dict[str, str]]:
    """The forces' problems (police clients' forces included) and each force's default LA."""
    async with standalone_uow(settings, "identity") as uow:
        clients = set((await uow.conn.execute(
            select(api_clients.c.force_code).where(api_clients.c.disabled_at.is_(None))
        )).scalars())
    async with standalone_uow(settings, "ingest") as uow:
        problems = await force_problems(uow.conn, now=now, client_forces=clients)
        rows = (await uow.conn.execute(
            select(forces.c.force_code, forces.c.default_la_code)
            .where(forces.c.default_la_code.is_not(None)))).all()
    return problems, {row.force_code: row.default_la_code for row in rows}
