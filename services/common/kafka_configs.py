"""IncrementalAlterConfigs (KIP-339, API key 44), which aiokafka's admin client lacks.

Version 0 (not flexible) sets each named config and leaves every other one as it is, unlike
AlterConfigs, which replaces a topic's whole set. `kafka_setup apply` uses it to bring topics
that exist already to the layout's configs (retention, compaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Schema, String

TOPIC = 2  # Kafka's ConfigResource.Type wire value
SET = 0  # AlterConfigOp.OpType.SET


class IncrementalAlterConfigsResponse_v0(Response):  # type: ignore[misc]
    """Per resource: error code and message."""

    API_KEY = 44
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("responses", Array(("error_code", Int16), ("error_message", String("utf-8")),
                            ("resource_type", Int8), ("resource_name", String("utf-8")))),
    )


class IncrementalAlterConfigsRequest_v0(RequestStruct):  # type: ignore[misc]
    """Per resource: (name, operation, value) for each config to change."""

    API_KEY = 44
    API_VERSION = 0
    RESPONSE_TYPE = IncrementalAlterConfigsResponse_v0
    SCHEMA = Schema(
        ("resources", Array(("resource_type", Int8), ("resource_name", String("utf-8")),
                            ("configs", Array(("name", String("utf-8")),
                                              ("config_operation", Int8),
                                              ("value", String("utf-8")))))),
        ("validate_only", Boolean),
    )


class IncrementalAlterConfigs(Request[IncrementalAlterConfigsRequest_v0]):  # type: ignore[misc]
    """Set these configs on these topics, leaving their other configs alone."""

    API_KEY = 44

    def __init__(self, topic_configs: Mapping[str, Mapping[str, str]]) -> None:
        self.topic_configs = topic_configs

    def build(
        self, request_struct_class: type[IncrementalAlterConfigsRequest_v0]
    ) -> IncrementalAlterConfigsRequest_v0:
        """The wire struct for the negotiated version (v0 here)."""
        return request_struct_class(
            [(TOPIC, topic, [(name, SET, value) for name, value in configs.items()])
             for topic, configs in self.topic_configs.items()], False)


async def set_topic_configs(
    admin: AIOKafkaAdminClient, topic_configs: Mapping[str, Mapping[str, str]], *,
    attempts: int = 50, backoff_s: float = 0.2,
) -> None:
    """Set each topic's named configs on the broker (idempotent; others are left alone)."""
    pending = dict(topic_configs)
    for attempt in range(1, attempts + 1):
        if not pending:
            return
        response = await admin._send_request(IncrementalAlterConfigs(pending))
        retry: dict[str, Mapping[str, str]] = {}
        for code, message, _type, name in response.responses:
            if not code:
                continue
            error = for_code(code)
            # a topic created a moment ago may be unknown to this broker until its metadata
            # catches up (UNKNOWN_TOPIC_OR_PARTITION): retriable, so ask again
            if not error.retriable or attempt == attempts:
                raise error(f"configs of topic {name}: {message}")
            retry[name] = pending[name]
        pending = retry
        if pending:
            await asyncio.sleep(backoff_s)
