"""AlterUserScramCredentials (KIP-554, API key 51), which aiokafka's admin client lacks.

Only version 0 exists; it is a flexible version (compact strings and arrays, tagged fields).
The client sends salted passwords only: the broker derives its stored and server keys.
"""

from __future__ import annotations

from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

SCRAM_SHA_512 = 2  # Kafka's ScramMechanism wire value


class AlterScramCredentialsResponse_v0(Response):  # type: ignore[misc]
    """Per user: error code and message."""

    API_KEY = 51
    API_VERSION = 0
    FLEXIBLE_VERSION = True
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(("user", CompactString("utf-8")), ("error_code", Int16),
                                 ("error_message", CompactString("utf-8")),
                                 ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class AlterScramCredentialsRequest_v0(RequestStruct):  # type: ignore[misc]
    """Deletions (none here) and upsertions of SCRAM credentials."""

    API_KEY = 51
    API_VERSION = 0
    FLEXIBLE_VERSION = True
    RESPONSE_TYPE = AlterScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8),
                                   ("tags", TaggedFields))),
        ("upsertions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8),
                                    ("iterations", Int32), ("salt", CompactBytes),
                                    ("salted_password", CompactBytes), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class AlterScramCredentials(Request[AlterScramCredentialsRequest_v0]):  # type: ignore[misc]
    """Upsert SCRAM-SHA-512 credentials: (user, salt, salted password) each."""

    API_KEY = 51

    def __init__(self, upserts: list[tuple[str, bytes, bytes]], *, iterations: int) -> None:
        self.upserts = upserts
        self.iterations = iterations

    def build(
        self, request_struct_class: type[AlterScramCredentialsRequest_v0]
    ) -> AlterScramCredentialsRequest_v0:
        """The wire struct for the negotiated version (only v0 exists)."""
        return request_struct_class(
            [], [(user, SCRAM_SHA_512, self.iterations, salt, salted, {})
                 for user, salt, salted in self.upserts], {})
