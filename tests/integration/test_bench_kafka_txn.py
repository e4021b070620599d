"""bench/kafka_txn.py against the real broker, tiny: every way sends what it says (the costs
themselves are read by people, never asserted)."""

from __future__ import annotations

import argparse

import pytest

from bench.kafka_txn import run
from services.common.settings import Settings
from tests.support.kafka import read_topic

pytestmark = pytest.mark.asyncio


async def test_each_way_sends_its_records_and_every_one_is_visible(settings: Settings) -> None:
    args = argparse.Namespace(records=10, batch=5, warm=5)
    costs = await run(args, settings)
    assert list(costs) == ["no transaction, acks=all (baseline)", "one record per transaction",
                           "5 records per transaction"]
    assert all(cost.wall_ms > 0 and cost.client_ms > 0 for cost in costs.values())
    # three ways, each its warm-up and its counted records, all committed
    records = await read_topic(settings.kafka(), settings.topic("incidents.v1"),
                               at_least=3 * (5 + 10))
    assert len(records) == 3 * (5 + 10)
