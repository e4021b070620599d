"""Schools in the notifier's copy of the registry, ChildMatched events for them, their rows,
and the `notifier_deps` fixture."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.incidents import ChildReport
from schemas.matching import ChildMatched, IncidentFacts, SchoolMatch
from services.common.events import PER_POLL
from services.common.settings import Settings
from services.notifier.content import opened_notification
from services.notifier.handlers import HANDLERS, NotifierDeps
from services.notifier.models import notifications
from tests.support.clock import Clock
from tests.support.directory import notifier_knows_la, notifier_knows_school
from tests.support.ids import next_la, next_tag, next_urn
from tests.support.webhooks import HOOK_SECRET

MATCHED_AT = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)  # Sunday evening
PUSH_AT = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 07:00 in London (GMT)


@pytest.fixture
def notifier_deps(notifier_engine: AsyncEngine, clock: Clock, settings: Settings
                  ) -> NotifierDeps:
    """The notifier's handlers' dependencies: its own role, the test's clock."""
    return NotifierDeps(engine=notifier_engine, clock=clock,
                        child_key_secret=settings.child_key_secret.get_secret_value())


@dataclass
class School:
    """A school the notifier knows, with its DSL, deputy and LA contact addresses."""

    urn: str
    la: str
    dsl: str
    deputy: str
    la_contact: str


async def add_school(engine: AsyncEngine, *, participates: bool = True,
                     webhook_url: str | None = None) -> School:
    """A new school and its LA in the notifier's copy, as registry.v1 would announce them."""
    tag = next_tag()
    school = School(next_urn(), next_la(), f"dsl-{tag}@school.test",
                    f"deputy-{tag}@school.test", f"la-{tag}@la.test")
    await notifier_knows_la(engine, school.la, contacts=[
        {"role": "safeguarding", "name": "S", "email": school.la_contact}])
    await notifier_knows_school(
        engine, school.urn, school.la, name=f"School {tag}", participates=participates,
        contacts=[{"role": "dsl", "name": "D", "email": school.dsl},
                  {"role": "deputy_dsl", "name": "E", "email": school.deputy}],
        webhook={"url": webhook_url, "secret": HOOK_SECRET} if webhook_url else None)
    return school


def facts(incident_id: uuid.UUID) -> IncidentFacts:
    """A WMP domestic-abuse incident two hours before MATCHED_AT."""
    return IncidentFacts(incident_id=incident_id, force_code="WMP",
                         occurred_at=MATCHED_AT - timedelta(hours=2),
                         incident_type="domestic_abuse", summary="Secret summary",
                         disclosure_fields=["occurred_at", "present_at_incident"])


def child(given: str) -> ChildReport:
    """A child of the Okafor family, present at the incident."""
    return ChildReport(given_name=given, family_name="Okafor", date_of_birth=date(2015, 1, 9),
                       present_at_incident=True, voice_of_child="Secret voice")


def matched(incident_id: uuid.UUID, school: School, given: str, index: int = 0, *,
            matched_at: datetime = MATCHED_AT) -> Any:
    """The matcher's ChildMatched for child `index` of the incident, at the school."""
    return wrap(ChildMatched(
        child_id=uuid.uuid5(incident_id, str(index)), child_index=index,
        incident=facts(incident_id), child=child(given), decided_by="engine",
        schools=[SchoolMatch(urn=school.urn, la_code=school.la, score=30)],
        matched_at=matched_at))


async def rows_for(engine: AsyncEngine, incident_id: uuid.UUID) -> list[Any]:
    """The incident's notification rows, their sealed incident opened."""
    async with engine.connect() as conn:
        return [SimpleNamespace(**opened_notification(conn, row._mapping))
                for row in await conn.execute(select(notifications).where(
                    notifications.c.incident_id == incident_id))]


async def handle(envelope: Any, *, deps: NotifierDeps) -> None:
    """Apply one event through the notifier's handler table (a per-poll handler's as a run of
    one), in its own transaction."""
    handler = HANDLERS[envelope.type]
    await handler([envelope] if getattr(handler, PER_POLL, False) else envelope, deps=deps)
