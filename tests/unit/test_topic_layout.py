"""Which topic keeps its records how long: one layout, set at creation and on every apply."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas import topics
from services.common.kafka_setup import deployment_topics
from services.common.settings import DAY_MS, WEEK_MS, Settings, TopicLayout


def settings(**kw: object) -> Settings:
    return Settings(**{"env": "development", **kw})


@pytest.mark.parametrize(("topic", "retention"), [
    pytest.param("p.incidents.v1", str(WEEK_MS), id="content"),
    pytest.param("p.notifications.v1.dlq", str(WEEK_MS), id="content-dlq"),
    pytest.param("p.disclosures.v1", str(30 * DAY_MS), id="disclosures"),
    pytest.param("p.disclosures.v1.dlq", str(30 * DAY_MS), id="disclosures-dlq"),
    pytest.param("p.registry.v1", "-1", id="registry-compacted"),
    pytest.param("p.registry.v1.dlq", str(WEEK_MS), id="registry-dlq"),
])
def test_each_topic_names_its_retention(topic: str, retention: str) -> None:
    assert TopicLayout().configs(topic)["retention.ms"] == retention


def test_only_the_registry_is_compacted() -> None:
    compacted = [t for t in deployment_topics("p.")
                 if TopicLayout().configs(t).get("cleanup.policy") == "compact"]
    assert compacted == ["p." + topics.REGISTRY]


def test_the_disclosures_retention_is_a_setting() -> None:
    layout = settings(kafka_disclosures_retention_ms=10 * DAY_MS).topic_layout()
    assert layout.configs("disclosures.v1")["retention.ms"] == str(10 * DAY_MS)


@pytest.mark.parametrize("name", ["kafka_retention_ms", "kafka_dlq_retention_ms",
                                  "kafka_disclosures_retention_ms"])
def test_no_topic_keeps_records_longer_than_the_content(name: str) -> None:
    short = {"retention_content_days": 20, "kafka_disclosures_retention_ms": 20 * DAY_MS}
    with pytest.raises(ValidationError, match=name.upper()):
        settings(**short | {name: 21 * DAY_MS})
    assert getattr(settings(**short | {name: 20 * DAY_MS}), name) == 20 * DAY_MS
