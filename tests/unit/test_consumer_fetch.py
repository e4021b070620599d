"""Every consumer's fetches are batched as the settings say: the broker holds a fetch until
it has `kafka_fetch_min_bytes` or `kafka_fetch_max_wait_ms` has passed, so a loaded
pipeline takes fewer, fuller polls (fewer transactions) for a bounded wait per hop."""

from __future__ import annotations

import asyncio

from services.common.kafka import make_consumer
from services.common.settings import Settings


def _consumer_fetch(settings: Settings) -> tuple[int, int]:
    async def build() -> tuple[int, int]:
        consumer = make_consumer(settings.kafka(), "incidents.v1", group_id="g")
        return consumer._fetch_max_wait_ms, consumer._fetch_min_bytes

    return asyncio.run(build())


def test_a_consumer_waits_for_a_fuller_fetch_by_default() -> None:
    assert _consumer_fetch(Settings(env="test")) == (100, 256 * 1024)


def test_a_consumer_takes_the_deployments_fetch_settings() -> None:
    tuned = Settings(env="test", kafka_fetch_max_wait_ms=0, kafka_fetch_min_bytes=1)
    assert _consumer_fetch(tuned) == (0, 1)
