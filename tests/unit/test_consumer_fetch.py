"""Every consumer's fetches are batched as the settings say: the broker holds a fetch until
it has `kafka_fetch_min_bytes` or `kafka_fetch_max_wait_ms` has passed, so a loaded
pipeline takes fewer, fuller polls (fewer transactions) for a bounded wait per hop."""

from __future__ import annotations

import asyncio

from services.common.bootstrap import build_worker
from services.common.kafka import make_consumer
from services.common.kafka_access import SERVICES
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


def test_only_the_alert_paths_groups_fetch_at_its_short_wait() -> None:
    """A police report's way to a school's alert is the matcher's group and the notifier's;
    every other group's fetches wait the background's longer wait (an idle stack's broker
    spent 15.7% of a core answering empty fetches, 10.6% with every wait at 500 ms)."""
    settings = Settings(env="test", kafka_fetch_max_wait_ms=100,
                        kafka_background_fetch_max_wait_ms=700)

    async def nothing(record: object) -> None:
        return None

    waits = {access.group_id(""): build_worker(access, settings, engine=None,  # type: ignore[arg-type]
                                               source="s", handle=nothing)
             .kafka.fetch_max_wait_ms
             for access in SERVICES if access.consumes}
    # were all 100
    assert waits == {"daybreak-ingest": 700, "daybreak-matcher": 100, "daybreak-notifier": 100,
                     "daybreak-notifier-registry": 700, "daybreak-notifier-figures": 700,
                     "daybreak-audit": 700}
