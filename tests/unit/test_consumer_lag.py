"""The consume loop's lag report never holds the loop: a partition with no position yet
(after a rebalance the coordinator has not finished) is skipped, not waited for."""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.common import metrics
from services.common.metrics import ConsumerLag

TP = TopicPartition("matches.v1", 0)


class NoPositionYet:
    """A consumer assigned one partition whose position never arrives (aiokafka's position()
    loops until it does)."""

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def last_stable_offset(self, tp: TopicPartition) -> int:
        return 7

    def highwater(self, tp: TopicPartition) -> int:
        return 7

    async def position(self, tp: TopicPartition) -> int:
        await asyncio.Event().wait()  # for ever
        raise AssertionError("unreachable")


async def test_a_partition_without_a_position_does_not_hold_the_consume_loop() -> None:
    registry = CollectorRegistry()
    lag = ConsumerLag(registry)
    started = time.monotonic()
    await asyncio.wait_for(lag(NoPositionYet(), {}), 5)  # type: ignore[arg-type]
    assert time.monotonic() - started < metrics.POSITION_WAIT_S + 1
    assert registry.get_sample_value("daybreak_consumer_lag",
                                     {"topic": TP.topic, "partition": "0"}) is None
    # with the record in hand the lag is known without asking for a position
    await lag(NoPositionYet(), {TP: 4})  # type: ignore[arg-type]
    assert registry.get_sample_value("daybreak_consumer_lag",
                                     {"topic": TP.topic, "partition": "0"}) == 3
