"""The transactional publisher behind ingest's 202: a published record is readable at once."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka import KafkaPublisher
from services.common.settings import KafkaConnection, TopicLayout

pytestmark = pytest.mark.integration


async def test_a_published_record_is_visible_to_read_committed_readers_on_return(
    kafka: KafkaConnection, topic_prefix: str
) -> None:
    # the coordinator acknowledges a commit before its markers reach the partition: before
    # publish waited for them, 119 of 200 records were not yet readable when it returned
    topic = f"{topic_prefix}visible"
    publisher = KafkaPublisher(kafka, topics=[topic], layout=TopicLayout(partitions=1))
    reader = AIOKafkaConsumer(**kafka.client_options(),
                              isolation_level="read_committed", enable_auto_commit=False)
    await reader.start()
    tp = TopicPartition(topic, 0)
    try:
        hidden = 0
        for n in range(60):
            await publisher.publish(topic, key="k", value=b"v")
            # transaction n holds its record at offset 2n and its commit marker at 2n + 1
            if (await reader.end_offsets([tp]))[tp] <= 2 * n:
                hidden += 1
        assert hidden == 0
        await asyncio.gather(*(publisher.publish(topic, key=str(k), value=b"v")
                               for k in range(50)))  # group-committed together
        assert (await reader.end_offsets([tp]))[tp] >= 60 * 2 + 50
    finally:
        await reader.stop()
        await publisher.stop()
