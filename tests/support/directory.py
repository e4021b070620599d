"""Give the notifier's copy of the registry a school or LA the way registry.v1 would."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas import topics
from schemas.directory import (
    CalendarDay,
    LocalAuthorityChanged,
    SchoolCalendarChanged,
    SchoolChanged,
)
from schemas.envelope import wrap
from services.common.db import UnitOfWork
from services.common.escalation import DEFAULT_ESCALATION
from services.common.events import apply_values
from services.common.models import outbox
from services.notifier.directory import (
    HANDLERS,
    DirectoryDeps,
    on_calendar_changed,
    on_local_authority_changed,
    on_school_changed,
)


async def notifier_knows_la(engine: AsyncEngine, la_code: str, *,
                            contacts: list[dict[str, str]] | None = None) -> None:
    """Apply a LocalAuthorityChanged to the notifier's copy (`engine`: the notifier's)."""
    await on_local_authority_changed(wrap(LocalAuthorityChanged(
        la_code=la_code, name=f"LA {la_code}", contacts=contacts or [])),
        deps=DirectoryDeps(engine))


async def notifier_knows_school(engine: AsyncEngine, urn: str, la_code: str, **fields: Any
                                ) -> None:
    """Apply a SchoolChanged to the notifier's copy; unnamed fields take the registry's
    defaults (open, participating, 08:45, the default escalation minutes)."""
    state: dict[str, Any] = {
        "name": f"School {urn}", "status": "open", "participates": True,
        "day_starts_at": time(8, 45), "contacts": [], "webhook": None,
        **DEFAULT_ESCALATION} | fields
    await on_school_changed(wrap(SchoolChanged(urn=urn, la_code=la_code, **state),
                                 occurred_at=datetime.now(UTC)), deps=DirectoryDeps(engine))


async def notifier_knows_calendar(engine: AsyncEngine, urn: str,
                                  days: list[tuple[date, str]]) -> None:
    """Apply a SchoolCalendarChanged to the notifier's copy."""
    await on_calendar_changed(wrap(SchoolCalendarChanged(urn=urn, days=[
        CalendarDay(day=day, kind=kind) for day, kind in days])),  # type: ignore[arg-type]
        deps=DirectoryDeps(engine))


async def deliver_registry(matcher: AsyncEngine, notifier: AsyncEngine, *,
                           topic_prefix: str) -> int:
    """What the relay and the notifier's registry consumer do, without a broker: apply the
    registry.v1 events the matcher has staged (under this prefix) to the notifier's copy."""
    async with matcher.connect() as conn:
        values = list((await conn.execute(select(outbox.c.value).where(
            outbox.c.source == f"{topic_prefix}matcher",
            outbox.c.topic == f"{topic_prefix}{topics.REGISTRY}").order_by(outbox.c.id))
        ).scalars())
    async with UnitOfWork(notifier) as uow:
        applied = await apply_values(values, HANDLERS, deps=DirectoryDeps(notifier), uow=uow)
        await uow.commit()
    return applied


async def notifier_knows_la_as(engine: AsyncEngine, la_code: str, *,
                               contacts: list[dict[str, str]], **settings: Any) -> None:
    """Apply a LocalAuthorityChanged with its safety-net settings (escalation_before_minutes,
    attendance_prompt_at, attendance_la_at; unnamed ones take the registry's defaults)."""
    await on_local_authority_changed(wrap(LocalAuthorityChanged(
        la_code=la_code, name=f"LA {la_code}", contacts=contacts, **settings)),
        deps=DirectoryDeps(engine))
