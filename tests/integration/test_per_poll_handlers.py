"""A set-based (per-poll) handler takes a run of same-type events in one call, in order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import Envelope, wrap
from schemas.incidents import ChildWithdrawn, IncidentWithdrawn
from services.common.db import UnitOfWork, service_engine
from services.common.events import apply_values, per_poll, transactional
from services.common.idempotency import claim_events

pytestmark = pytest.mark.integration
AT = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@dataclass
class Deps:
    engine: AsyncEngine
    calls: list[tuple[str, list[uuid.UUID]]]


@per_poll
async def withdrawn_many(envelopes: list[Envelope[Any]], *, deps: Deps, uow: UnitOfWork) -> None:
    deps.calls.append(("many", [e.payload.incident_id for e in envelopes]))


@transactional
async def child_one(envelope: Envelope[Any], *, deps: Deps, uow: UnitOfWork) -> None:
    deps.calls.append(("one", [envelope.payload.incident_id]))


def withdrawn(incident_id: uuid.UUID) -> bytes:
    return wrap(IncidentWithdrawn(incident_id=incident_id, force_code="WMP", withdrawn_at=AT,
                                  reason="error")).model_dump_json().encode()


def child(incident_id: uuid.UUID) -> bytes:
    return wrap(ChildWithdrawn(incident_id=incident_id, force_code="WMP", child_index=0,
                               withdrawn_at=AT, reason="error")).model_dump_json().encode()


async def test_runs_of_one_type_go_to_a_per_poll_handler_together_in_order(settings) -> None:
    engine = service_engine(settings, "matcher", pool_size=1)
    deps = Deps(engine=engine, calls=[])
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    try:
        async with UnitOfWork(engine) as uow:
            handled = await apply_values(
                [withdrawn(a), withdrawn(b), child(c), withdrawn(d)],
                {"IncidentWithdrawn": withdrawn_many, "ChildWithdrawn": child_one},
                deps=deps, uow=uow)
        assert handled == 4
        assert deps.calls == [("many", [a, b]), ("one", [c]), ("many", [d])]
        deps.calls.clear()
        async with UnitOfWork(engine) as uow:  # two types sharing one per-poll handler: one run
            await apply_values([withdrawn(a), child(b), withdrawn(c), child(d), child(a)],
                               {"IncidentWithdrawn": withdrawn_many,
                                "ChildWithdrawn": withdrawn_many},
                               deps=deps, uow=uow)
        assert deps.calls == [("many", [a, b, c, d, a])]
        deps.calls.clear()
        await withdrawn_many([], deps=deps)  # called alone, it opens its own transaction
        assert deps.calls == [("many", [])]
    finally:
        await engine.dispose()


async def test_claim_events_claims_each_new_id_once_in_one_statement(settings) -> None:
    engine = service_engine(settings, "matcher", pool_size=1)
    seen, fresh = uuid.uuid4(), uuid.uuid4()
    try:
        async with UnitOfWork(engine) as uow:
            assert await claim_events(uow.conn, consumer="matcher", event_ids=[seen]) == {seen}
            assert await claim_events(uow.conn, consumer="matcher",
                                      event_ids=[seen, fresh, fresh]) == {fresh}
            assert await claim_events(uow.conn, consumer="matcher", event_ids=[]) == set()
            await uow.commit()
    finally:
        await engine.dispose()
