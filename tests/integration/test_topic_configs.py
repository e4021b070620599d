"""Topic retention on the real broker: `kafka_setup apply` gives every topic its layout's
configs, both when it creates the topic and when the topic is older than the layout.

Each test applies under its own topic prefix; the topics and ACLs it made are removed after.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import UnknownTopicOrPartitionError

from schemas import topics
from services.common import kafka_setup
from services.common.kafka import ensure_topics
from services.common.kafka_access import SERVICES
from services.common.settings import DAY_MS, WEEK_MS, KafkaConnection, TopicLayout

pytestmark = pytest.mark.integration

LAYOUT = TopicLayout(partitions=1)
CONTENT = (topics.INCIDENTS, topics.MATCHES, topics.REVIEWS, topics.NOTIFICATIONS)
YEAR_MS = 365 * DAY_MS


@pytest.fixture
async def admin(kafka: KafkaConnection, topic_prefix: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """The admin client; the ACLs `apply` grants under this test's prefix are revoked after."""
    client = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=10000)
    await client.start()
    yield client
    await client.close()
    for service in SERVICES:
        await kafka_setup.delete_acls_of(kafka, service.name, prefix=topic_prefix)


async def described(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    """The topic's effective configs as the broker reports them (a topic created a moment ago
    is unknown to the broker until its metadata catches up)."""
    for _ in range(50):
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)])
        [(code, _message, _type, _name, entries)] = response.resources
        if code != UnknownTopicOrPartitionError.errno:
            break
        await asyncio.sleep(0.2)
    assert code == 0, code
    return {entry[0]: entry[1] for entry in entries}


async def apply(kafka: KafkaConnection, prefix: str, layout: TopicLayout = LAYOUT) -> None:
    await kafka_setup.apply(kafka, prefix=prefix, layout=layout, passwords={})


async def test_apply_creates_each_topic_with_its_retention(
    kafka: KafkaConnection, topic_prefix: str, admin: AIOKafkaAdminClient,
) -> None:
    await apply(kafka, topic_prefix)

    for base in CONTENT:
        for topic in (base, topics.dlq(base)):
            configs = await described(admin, topic_prefix + topic)
            assert (configs["cleanup.policy"], configs["retention.ms"]) == (
                "delete", str(WEEK_MS)), topic
    for topic in (topics.DISCLOSURES, topics.dlq(topics.DISCLOSURES)):
        configs = await described(admin, topic_prefix + topic)
        assert (configs["cleanup.policy"], configs["retention.ms"]) == (
            "delete", str(30 * DAY_MS)), topic
    registry = await described(admin, topic_prefix + topics.REGISTRY)
    assert (registry["cleanup.policy"], registry["retention.ms"]) == ("compact", "-1")
    parked = await described(admin, topic_prefix + topics.dlq(topics.REGISTRY))
    assert parked["retention.ms"] == str(WEEK_MS)


async def test_apply_brings_topics_an_older_release_made_to_the_layout(
    kafka: KafkaConnection, topic_prefix: str, admin: AIOKafkaAdminClient,
) -> None:
    incidents, registry = topic_prefix + topics.INCIDENTS, topic_prefix + topics.REGISTRY
    parked = topic_prefix + topics.dlq(topics.MATCHES)
    await admin.create_topics([
        NewTopic(incidents, 1, 1, topic_configs={"retention.ms": str(YEAR_MS),
                                                 "max.message.bytes": "2000000"}),
        NewTopic(parked, 1, 1),  # the broker's default: a week, or what the operator set
        NewTopic(registry, 1, 1, topic_configs={"cleanup.policy": "compact"}),
    ])
    assert (await described(admin, incidents))["retention.ms"] == str(YEAR_MS)

    await apply(kafka, topic_prefix, TopicLayout(partitions=1, retention_ms=3 * DAY_MS,
                                                 dlq_retention_ms=2 * DAY_MS))

    configs = await described(admin, incidents)
    assert configs["retention.ms"] == str(3 * DAY_MS)
    assert configs["max.message.bytes"] == "2000000"  # what the layout does not name stays
    assert (await described(admin, parked))["retention.ms"] == str(2 * DAY_MS)
    configs = await described(admin, registry)
    assert (configs["cleanup.policy"], configs["retention.ms"]) == ("compact", "-1")


async def test_apply_twice_changes_nothing(
    kafka: KafkaConnection, topic_prefix: str, admin: AIOKafkaAdminClient,
) -> None:
    await apply(kafka, topic_prefix)
    before = await described(admin, topic_prefix + topics.REVIEWS)
    await apply(kafka, topic_prefix)
    assert await described(admin, topic_prefix + topics.REVIEWS) == before


async def test_topics_are_made_with_the_layouts_partitions_for_several_consumers(
    kafka: KafkaConnection, topic_prefix: str, admin: AIOKafkaAdminClient,
) -> None:
    topic = topic_prefix + topics.INCIDENTS
    await ensure_topics(kafka, [topic], layout=TopicLayout())

    [described] = await admin.describe_topics([topic])
    assert len(described["partitions"]) == TopicLayout().partitions == 6
