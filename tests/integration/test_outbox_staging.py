"""`add_all_to_outbox`: a poll's events staged by one execution, in the order given."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event, select

from schemas.envelope import wrap
from schemas.incidents import IncidentWithdrawn
from services.common.db import UnitOfWork, service_engine
from services.common.models import outbox
from services.common.outbox import add_all_to_outbox
from services.common.settings import Settings
from tests.support.ids import next_tag

pytestmark = pytest.mark.integration


def _withdrawn() -> IncidentWithdrawn:
    return IncidentWithdrawn(incident_id=uuid.uuid4(), force_code="WMP",
                             withdrawn_at="2026-11-22T08:00:00Z", reason="test")


async def test_a_polls_events_are_one_execution_in_their_order(settings: Settings) -> None:
    engine = service_engine(settings, "matcher", pool_size=1)
    source = f"test-{next_tag()}"
    sent: list[tuple[str, bool]] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
             executemany: bool) -> None:
        sent.append((statement, executemany))

    try:
        for count in (1, 30):
            staged = [(f"topic-{i % 3}", f"key-{i}", wrap(_withdrawn())) for i in range(count)]
            async with UnitOfWork(engine) as uow:
                event.listen(engine.sync_engine, "before_cursor_execute", note)
                try:
                    await add_all_to_outbox(uow.conn, source=source, staged=staged)
                finally:
                    event.remove(engine.sync_engine, "before_cursor_execute", note)
                await uow.commit()
            async with engine.connect() as conn:
                rows = (await conn.execute(
                    select(outbox.c.topic, outbox.c.key, outbox.c.event_id)
                    .where(outbox.c.source == source).order_by(outbox.c.id))).all()
            # the ids follow the staged order: the relay publishes in that order
            assert [tuple(r) for r in rows[-count:]] == [
                (topic, key, envelope.event_id) for topic, key, envelope in staged]
        # was an executemany: one execution (and one statement in PostgreSQL) per event
        assert [executemany for _, executemany in sent] == [False, False]
        assert sent[0][0] == sent[1][0]  # the same text for 1 and for 30: prepared once
    finally:
        await engine.dispose()
