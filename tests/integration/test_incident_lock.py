"""Two notifiers, one incident: a withdrawal handled while another copy's match of the same
incident is still uncommitted waits for it, then retracts what it made. Without the incident's
lock the withdrawal saw no notification, the match had read "not withdrawn", and a
notification stayed scheduled for a withdrawn incident (found running two notifiers)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.incidents import IncidentWithdrawn
from services.common.db import UnitOfWork
from services.common.errors import is_transient
from services.notifier.handlers import NotifierDeps, on_child_matched, on_incident_withdrawn
from tests.support.notifier import MATCHED_AT, add_school, matched, rows_for

pytestmark = pytest.mark.integration


async def test_a_withdrawal_waits_for_a_match_of_the_same_incident_then_retracts_it(
    notifier_engine: AsyncEngine, notifier_deps: NotifierDeps,
) -> None:
    school, incident_id = await add_school(notifier_engine), uuid.uuid4()
    withdrawn = wrap(IncidentWithdrawn(incident_id=incident_id, force_code="WMP",
                                       withdrawn_at=MATCHED_AT, reason="sent in error"))
    async with UnitOfWork(notifier_engine) as first:  # one notifier, mid-transaction
        await on_child_matched(matched(incident_id, school, "Zara"), deps=notifier_deps,
                               uow=first)
        other = asyncio.create_task(on_incident_withdrawn(withdrawn, deps=notifier_deps))
        done, _ = await asyncio.wait({other}, timeout=1.0)
        assert not done, "the withdrawal did not wait for the incident's match"
        await first.commit()
    await asyncio.wait_for(other, timeout=30)
    [row] = await rows_for(notifier_engine, incident_id)
    assert row.state in ("cancelled", "retracted"), row.state


async def test_a_deadlock_between_two_transactions_is_retried_not_dead_lettered(
    notifier_engine: AsyncEngine,
) -> None:
    """Each incident-locked handler of a poll runs in one transaction, so two copies can
    each hold one incident and want the other's: PostgreSQL ends one (40P01), and that is
    the infrastructure's doing, retried, never the message's."""
    one, two = (f"notifier-incident:{uuid.uuid4()}" for _ in range(2))
    lock = text("SELECT pg_advisory_xact_lock(hashtext(:key))")
    async with notifier_engine.connect() as a, notifier_engine.connect() as b:
        await a.execute(lock, {"key": one})
        await b.execute(lock, {"key": two})
        crossed = await asyncio.gather(a.execute(lock, {"key": two}),
                                       b.execute(lock, {"key": one}), return_exceptions=True)
        [failure] = [outcome for outcome in crossed if isinstance(outcome, BaseException)]
        assert "deadlock" in str(failure).lower()
        assert is_transient(failure)
        await a.rollback()
        await b.rollback()
