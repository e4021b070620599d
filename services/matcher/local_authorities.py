"""Local authorities in the registry: contacts, safety-net settings, readiness."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from services.common.db import UnitOfWork
from services.common.escalation import (
    ATTENDANCE_LA_AT,
    ATTENDANCE_PROMPT_AT,
    ESCALATION_BEFORE_MINUTES,
)
from services.common.problems import Problem
from services.matcher.directory import announce
from services.matcher.models import local_authorities, schools
from services.matcher.readiness import la_readiness
from services.matcher.registry_models import LocalAuthorityIn, field_problem

SETTINGS_DEFAULTS: dict[str, Any] = {
    "escalation_before_minutes": ESCALATION_BEFORE_MINUTES,
    "attendance_prompt_at": ATTENDANCE_PROMPT_AT,
    "attendance_la_at": ATTENDANCE_LA_AT,
}


def _settings(body: LocalAuthorityIn, current: Any) -> dict[str, Any]:
    """The settings a PUT leaves: given ones, else the stored (or default) values."""
    given: dict[str, Any] = {}
    if body.escalation_before_minutes is not None:
        given["escalation_before_minutes"] = body.escalation_before_minutes
    for key in ("attendance_prompt_at", "attendance_la_at"):
        if (value := getattr(body, key)) is not None:
            given[key] = time.fromisoformat(value)
    merged = {k: getattr(current, k) if current is not None else default
              for k, default in SETTINGS_DEFAULTS.items()} | given
    if merged["attendance_prompt_at"] >= merged["attendance_la_at"]:
        raise field_problem("attendance_prompt_at", "must be before attendance_la_at")
    return merged


async def put_local_authority(
    la_code: str, *, body: LocalAuthorityIn, uow: UnitOfWork, now: datetime, topic_prefix: str,
) -> bool:
    """Create or replace a local authority; True when it was created."""
    async with uow:
        current = (await uow.conn.execute(
            select(*(local_authorities.c[k] for k in SETTINGS_DEFAULTS))
            .where(local_authorities.c.la_code == la_code).with_for_update()
        )).first()
        values = {"name": body.name, "contacts": [c.model_dump() for c in body.contacts],
                  "updated_at": now, **_settings(body, current)}
        if body.force_code is not None:
            values["force_code"] = body.force_code
        await uow.conn.execute(
            insert(local_authorities).values(la_code=la_code, **values)
            .on_conflict_do_update(index_elements=["la_code"], set_=values)
        )
        await announce(uow.conn, topic_prefix=topic_prefix, now=now, la_codes=[la_code])
        await uow.commit()
    return current is None


async def get_local_authority(la_code: str, *, uow: UnitOfWork, now: datetime
                              ) -> dict[str, Any]:
    """A local authority, its contacts, its settings, how many schools it has, its readiness
    as of `now`."""
    async with uow:
        row = (await uow.conn.execute(
            select(local_authorities).where(local_authorities.c.la_code == la_code)
        )).first()
        count = (await uow.conn.execute(
            select(func.count()).select_from(schools).where(schools.c.la_code == la_code)
        )).scalar_one()
        problems = await la_readiness(uow.conn, [la_code], now=now)
    if row is None:
        raise Problem(404, "Not found", "No such local authority.")
    return {"la_code": row.la_code, "name": row.name, "contacts": row.contacts,
            "escalation_before_minutes": row.escalation_before_minutes,
            "attendance_prompt_at": row.attendance_prompt_at.strftime("%H:%M"),
            "attendance_la_at": row.attendance_la_at.strftime("%H:%M"),
            "force_code": row.force_code, "schools": count, "ready": not problems,
            "problems": [p.as_dict() for p in problems],
            "updated_at": row.updated_at.isoformat()}
