"""Tables shared by every service: outbox, processed events, accounts."""

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
    Text,
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

processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", String(64), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer", "event_id"),
    schema=OWN_SCHEMA,
)

api_clients = Table(
    "api_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("force_code", String(10), nullable=False, index=True),
    Column("secret_hash", Text, nullable=False),
    Column("scopes", ARRAY(String(64)), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("disabled_at", DateTime(timezone=True)),
)

users = Table(
    "users",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("school_urns", ARRAY(String(7)), nullable=False, server_default="{}"),
    Column("la_codes", ARRAY(String(8)), nullable=False, server_default="{}"),
    Column("last_totp_step", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("disabled_at", DateTime(timezone=True)),
)

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("subject_hash", String(64), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_auth_failures_subject", auth_failures.c.subject_hash, auth_failures.c.failed_at)
