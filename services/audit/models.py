"""The audit service's tables: the hash-chained event log and its signed tree heads.

Both are append-only: the application role holds only SELECT and INSERT, and a trigger
refuses UPDATE, DELETE and TRUNCATE from anyone, the owner included (migration 0003).

The chain covers what each row's `hash_version` says (`chain.HASH_VERSIONS`): version 1,
the rows written before migration 0017, the contract's fields only (their `la_code`,
`review_id`, `incident_id` and `recorded_at` are protected by the trigger alone); version 2,
every row since, every column but `seq` and `hash`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
)

from services.common.db import metadata

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("id", Uuid, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("actor_role", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("channel", Text),
    Column("school_urn", Text),
    Column("child_key", Text),
    Column("notification_id", Uuid),
    Column("purpose", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("la_code", Text),
    Column("review_id", Uuid),
    Column("incident_id", Uuid),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("hash_version", SmallInteger, nullable=False),
    schema="audit",
)
Index("ix_audit_events_school_urn", audit_events.c.school_urn, audit_events.c.seq)
Index("ix_audit_events_actor", audit_events.c.actor, audit_events.c.seq)
Index("ix_audit_events_child_key", audit_events.c.child_key, audit_events.c.seq)
Index("ix_audit_events_at", audit_events.c.at)

audit_tree_heads = Table(
    "audit_tree_heads",
    metadata,
    Column("tree_size", BigInteger, primary_key=True),
    Column("root_hash", String(64), nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("key_id", String(16), nullable=False),
    schema="audit",
)

CHAIN_COLUMNS = (
    audit_events.c.seq, audit_events.c.id, audit_events.c.at, audit_events.c.actor,
    audit_events.c.actor_role, audit_events.c.action, audit_events.c.channel,
    audit_events.c.school_urn, audit_events.c.child_key, audit_events.c.notification_id,
    audit_events.c.purpose, audit_events.c.prev_hash, audit_events.c.hash,
    audit_events.c.la_code, audit_events.c.review_id, audit_events.c.incident_id,
    audit_events.c.recorded_at, audit_events.c.hash_version,
)  # fmt: skip
