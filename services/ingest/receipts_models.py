"""Ingest's read model of `notifications.v1`: the receipts police see, and their webhooks."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.common.db import metadata

TZ = DateTime(timezone=True)

# each force's change counter: its row lock orders a force's changes by commit
receipt_forces = Table(
    "receipt_forces",
    metadata,
    Column("force_code", String(10), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    schema="ingest",
)

receipt_incidents = Table(
    "receipt_incidents",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("force_code", String(10), nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("updated_at", TZ, nullable=False),  # when ingest learnt of the latest change
    Column("last_change", String(40), nullable=False),
    # what the receipt said after it: an event that changes nothing is no change
    Column("receipt_sha256", String(64), nullable=False),
    UniqueConstraint("force_code", "change_seq"),
    schema="ingest",
)

receipt_children = Table(
    "receipt_children",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("child_index", SmallInteger, primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("school_urns", JSONB, nullable=False),
    Column("la_code", String(8)),
    Column("decided_at", TZ, nullable=False),
    schema="ingest",
)

receipt_notifications = Table(
    "receipt_notifications",
    metadata,
    Column("notification_id", Uuid, primary_key=True),
    Column("incident_id", Uuid, nullable=False, index=True),
    Column("school_urn", String(7)),
    Column("la_code", String(8)),
    Column("recipient_role", String(8), nullable=False),
    Column("child_indexes", JSONB),
    Column("child_indexes_at", TZ),  # the time of the event that set them
    Column("retracted_children", JSONB, nullable=False, server_default="[]"),
    Column("scheduled_at", TZ),
    Column("push_at", TZ),
    Column("deadline_at", TZ),
    Column("pushed_at", TZ),
    Column("first_viewed_at", TZ),
    Column("acknowledged_at", TZ),
    Column("escalations", JSONB, nullable=False, server_default="[]"),
    Column("retracted_at", TZ),
    Column("retract_reason", String(24)),
    Column("actions", JSONB, nullable=False, server_default="[]"),
    schema="ingest",
)

# the secret signs the POSTs, so it is kept as schools' webhook secrets are: never returned
receipt_webhooks = Table(
    "receipt_webhooks",
    metadata,
    Column("force_code", String(10), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(256), nullable=False),
    Column("updated_at", TZ, nullable=False),
    schema="ingest",
)

receipt_deliveries = Table(
    "receipt_deliveries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("force_code", String(10), nullable=False),
    Column("incident_id", Uuid, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("next_attempt_at", TZ, nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("delivered_at", TZ),
    Column("last_error", String(200)),
    schema="ingest",
)
Index("ix_receipt_deliveries_pending", receipt_deliveries.c.next_attempt_at,
      postgresql_where=text("status = 'pending'"))
