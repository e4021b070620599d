"""How topics are laid out past one machine: partitions for several consumers, three copies
with two in sync, all from settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.kafka_setup import deployment_topics
from services.common.settings import Settings

KEY = "k" * 64


def settings(**kw: object) -> Settings:
    return Settings(**{"env": "test", "child_key_secret": KEY, "kafka_username": "ingest",
                       "kafka_password": KEY, **kw})


def test_by_default_two_or_three_copies_of_a_service_share_a_topic_evenly() -> None:
    layout = settings().topic_layout()
    assert layout.partitions == 6
    assert all(layout.partitions % copies == 0 for copies in (1, 2, 3))


def test_a_cluster_layout_is_three_copies_two_in_sync_on_every_topic() -> None:
    layout = settings(kafka_replication_factor=3, kafka_min_insync_replicas=2,
                      kafka_partitions=12).topic_layout()
    assert (layout.partitions, layout.replication_factor) == (12, 3)
    for topic in deployment_topics("prod."):
        assert layout.configs(topic)["min.insync.replicas"] == "2", topic


@pytest.mark.parametrize("name", ["kafka_partitions", "kafka_replication_factor",
                                  "kafka_min_insync_replicas"])
def test_topic_copies_and_partitions_are_at_least_one(name: str) -> None:
    with pytest.raises(ValidationError):
        settings(**{name: 0})
