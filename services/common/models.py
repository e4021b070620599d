"""Tables shared by every service: outbox, its relay's lease, processed events."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.common.db import OWN_SCHEMA, metadata

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("topic", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    schema=OWN_SCHEMA,
)
Index(
    "ix_outbox_unpublished",
    outbox.c.source,
    outbox.c.id,
    postgresql_where=text("published_at IS NULL"),
)

outbox_inflight = Table(
    "outbox_inflight",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("start_offsets", JSONB, nullable=False),
    Column("outbox_ids", ARRAY(BigInteger), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema=OWN_SCHEMA,
)

# who relays each source now: services/common/lease.py
outbox_leases = Table(
    "outbox_leases",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("holder", Uuid, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    schema=OWN_SCHEMA,
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", String(64), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer", "event_id"),
    schema=OWN_SCHEMA,
)
