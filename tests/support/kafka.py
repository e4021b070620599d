"""Read whole topics back from the real broker."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka import read_to_end
from services.common.settings import KafkaConnection


async def read_topic(
    kafka: KafkaConnection, topic: str, *, at_least: int = 0, timeout_s: float = 15
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the topic now (waiting up to `timeout_s` for `at_least` of them)."""
    consumer = AIOKafkaConsumer(
        **kafka.client_options(), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            records = await read_to_end(consumer, topic)
            if len(records) >= at_least or asyncio.get_running_loop().time() > deadline:
                return records
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


async def delete_topics_with_prefix(kafka: KafkaConnection, prefix: str) -> None:
    """Remove a test's topics so the shared broker does not fill up with partitions."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
