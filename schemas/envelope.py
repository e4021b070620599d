"""The event envelope every Kafka message is wrapped in."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

P = TypeVar("P", bound="EventPayload")


class EventPayload(BaseModel):
    """Base of every event payload: frozen, no unknown fields, a type name and version."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1
    # the payload's child data, travelling sealed on the wire (schemas/sealed.py): dotted
    # paths into its JSON, `*` for every item of a list
    sealed_paths: ClassVar[tuple[str, ...]] = ()


class Envelope(BaseModel, Generic[P]):
    """`event_id`, `type`, `version`, `occurred_at` and the payload; keys never carry names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    correlation_id: uuid.UUID | None = None
    payload: P

    def to_bytes(self) -> bytes:
        """Serialise to the JSON bytes put on the wire."""
        return self.model_dump_json().encode()


@functools.cache
def envelope_of(payload_cls: type[EventPayload]) -> type[Envelope[Any]]:
    """`Envelope[payload_cls]`, made once: pydantic's own lookup of a parametrised generic
    costs more than validating a small envelope, and every event of a poll asked for it."""
    return Envelope[payload_cls]  # type: ignore[valid-type]


def wrap(
    payload: P,
    *,
    event_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
    correlation_id: uuid.UUID | None = None,
) -> Envelope[P]:
    """Wrap a payload in an envelope carrying its type and version."""
    envelope: Envelope[P] = envelope_of(type(payload))(
        event_id=event_id or uuid.uuid4(),
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=occurred_at or datetime.now(UTC),
        correlation_id=correlation_id,
        payload=payload,
    )
    return envelope


class RawEnvelope(BaseModel):
    """An envelope whose payload is not yet parsed: what a consumer reads first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: AwareDatetime
    correlation_id: uuid.UUID | None = None
    payload: dict[str, Any]


def parse_envelope(
    data: bytes, registry: dict[tuple[str, int], type[EventPayload]]
) -> Envelope[Any]:
    """Parse wire bytes into a typed envelope using the payload registry."""
    return typed_envelope(RawEnvelope.model_validate_json(data), registry)


def typed_envelope(
    raw: RawEnvelope, registry: dict[tuple[str, int], type[EventPayload]]
) -> Envelope[Any]:
    """Validate a raw envelope's payload as its registered type (a consumer that skips most
    types reads `RawEnvelope` first and pays for payload validation only where it cares)."""
    payload_cls = registry.get((raw.type, raw.version))
    if payload_cls is None:
        raise UnknownEventType(raw.type, raw.version)
    payload = payload_cls.model_validate(raw.payload)
    return envelope_of(payload_cls)(
        event_id=raw.event_id,
        type=raw.type,
        version=raw.version,
        occurred_at=raw.occurred_at,
        correlation_id=raw.correlation_id,
        payload=payload,
    )


class UnknownEventType(ValueError):
    """An envelope whose (type, version) no handler knows."""

    def __init__(self, event_type: str, version: int) -> None:
        super().__init__(f"unknown event type {event_type!r} v{version}")
