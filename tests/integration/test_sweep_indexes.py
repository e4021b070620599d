"""The notifier's sweeps each read the rows they may take through an index, never the whole
notifications table (migration 0029): asked with sequential scans priced out, PostgreSQL
finds an index path for every one of them. And no index only repeats the start of another
(migration 0030), which costs every insert and serves nothing the other does not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.attendance import PROMPTED, WAITING, due_at_stage, unplanned
from services.notifier.dispatch import due_recipients
from services.notifier.models import notifications

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
# each sweep and the partial indexes that hold just the rows it may take
SWEEPS = {
    "attendance: plan": (unplanned(NOW, 200), ["ix_notifications_attendance_unplanned"]),
    "attendance: prompt": (due_at_stage(WAITING, notifications.c.attendance_prompt_at, NOW, 200),
                           ["ix_notifications_attendance"]),
    "attendance: hand to the LA": (
        due_at_stage(PROMPTED, notifications.c.attendance_la_at, NOW, 200),
        ["ix_notifications_attendance_la"]),
    "dispatch: due recipients": (due_recipients(NOW, 200),
                                 ["ix_notifications_due", "ix_notifications_awaiting"]),
}


async def _plan(engine: AsyncEngine, query: Any) -> str:
    sql = str(query.compile(dialect=postgresql.dialect(),
                            compile_kwargs={"literal_binds": True}))
    async with engine.connect() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(row[0] for row in await conn.execute(text(f"EXPLAIN {sql}")))


@pytest.mark.parametrize("sweep", list(SWEEPS))
async def test_a_sweep_never_reads_the_whole_table(notifier_engine: AsyncEngine,
                                                   sweep: str) -> None:
    query, indexes = SWEEPS[sweep]
    plan = await _plan(notifier_engine, query)
    # was "Seq Scan on notifications" (or a whole other index) for all but the prompt's:
    # every pass read every row
    assert "Seq Scan on notifications" not in plan, plan
    for index in indexes:
        assert f" using {index} " in plan or f" on {index}" in plan, plan


# a plain index whose columns begin another plain index of the same table: every lookup it
# serves, the longer one serves too, and each insert pays for both
_PREFIXES = text("""
SELECT a.indexrelid::regclass::text AS shorter, b.indexrelid::regclass::text AS longer
FROM pg_index a JOIN pg_index b ON a.indrelid = b.indrelid AND a.indexrelid <> b.indexrelid
JOIN pg_class t ON t.oid = a.indrelid JOIN pg_namespace s ON s.oid = t.relnamespace
WHERE s.nspname IN ('ingest', 'matcher', 'notifier', 'audit', 'identity')
  AND a.indpred IS NULL AND b.indpred IS NULL AND a.indexprs IS NULL AND b.indexprs IS NULL
  AND NOT a.indisunique AND b.indkey::text LIKE a.indkey::text || ' %'""")


async def test_no_index_repeats_the_start_of_another(notifier_engine: AsyncEngine) -> None:
    async with notifier_engine.connect() as conn:
        found = [tuple(row) for row in await conn.execute(_PREFIXES)]
    # was ix_notifications_incident_id, the start of the unique (incident_id, recipient_key)
    assert found == []


# a far day no other test writes to, so the only rows in the sweep's range are this test's
EVENING = datetime(2031, 3, 4, 19, 0, tzinfo=UTC)


async def test_the_attendance_plan_never_reads_the_evenings_scheduled_alerts(
        notifier_engine: AsyncEngine) -> None:
    """An evening's alerts wait, scheduled, for the morning: the plan, which takes only the
    delivered, must not walk past every one of them on each pass (bench.e2e: 1,962 blocks and
    34 ms a pass for no rows with 23,000 waiting)."""
    waiting = 60
    async with notifier_engine.connect() as conn, conn.begin() as txn:
        await conn.execute(notifications.insert(), [{
            "id": uuid.uuid4(), "incident_id": uuid.uuid4(), "recipient_key": "school:1000001",
            "school_urn": "1000001", "la_code": "E0900001", "recipient_role": "dsl",
            "state": "scheduled", "incident": {}, "created_at": EVENING,
            "push_at": EVENING + timedelta(hours=12)} for _ in range(waiting)])
        sql = str(unplanned(EVENING, 200).compile(dialect=postgresql.dialect(),
                                                  compile_kwargs={"literal_binds": True}))
        [[plan]] = (await conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"))).all()
        await txn.rollback()
    scans = [node for node in _nodes(plan[0]["Plan"])
             if node.get("Relation Name") == "notifications"]
    assert scans, plan
    walked = sum(node["Actual Rows"] + node.get("Rows Removed by Filter", 0) for node in scans)
    # was 60: the index's range was everything pushed since a week ago, tomorrow's included
    assert walked < waiting, plan


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(found for child in node.get("Plans", []) for found in _nodes(child))]
