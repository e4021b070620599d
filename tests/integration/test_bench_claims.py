"""bench/claims.py's baseline claims exactly what `claim_events` claims (the costs themselves
are read by people, never asserted)."""

from __future__ import annotations

import uuid

import pytest

from bench.claims import claim_by_rows
from services.common.db import service_engine
from services.common.idempotency import claim_events
from services.common.settings import Settings

pytestmark = pytest.mark.asyncio


async def test_both_ways_claim_each_new_id_once(settings: Settings) -> None:
    engine = service_engine(settings, "matcher", pool_size=1)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        async with engine.connect() as conn:
            assert await claim_by_rows(conn, consumer="bench-claims",
                                       event_ids=[first, second, first]) == {first, second}
            assert await claim_events(conn, consumer="bench-claims",
                                      event_ids=[second, third]) == {third}
            assert await claim_by_rows(conn, consumer="bench-claims",
                                       event_ids=[first, third]) == set()
            await conn.rollback()
    finally:
        await engine.dispose()
