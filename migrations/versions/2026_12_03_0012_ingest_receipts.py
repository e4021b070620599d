"""ingest receipts: what became of each reported child and notification, for the police

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00.000000

Ingest's own read model of `notifications.v1` (it reads no other service's tables):
* ingest.receipt_children: each reported child's outcome (matched, review, unmatched).
* ingest.receipt_notifications: each notification's life (scheduled, pushed, first viewed,
  acknowledged with its actions' types and dates, escalations, retraction).
* ingest.receipt_forces: each force's change counter; ingest.receipt_incidents: the change
  number and time of each incident's latest change (what `GET /v1/incidents` pages by).
* ingest.receipt_webhooks and receipt_deliveries: where a force takes its receipt changes,
  signed, and the queue of those POSTs with their retries.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.grants import DML, SERVICE_ROLES, grant, grant_sequences

revision: str = "0012"
down_revision: str | None = "0014"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
JSONB = postgresql.JSONB(astext_type=sa.Text())
TABLES = ("receipt_forces", "receipt_incidents", "receipt_children", "receipt_notifications",
          "receipt_webhooks", "receipt_deliveries")


def upgrade() -> None:
    op.create_table(
        "receipt_forces",
        sa.Column("force_code", sa.String(length=10), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("force_code", name=op.f("pk_receipt_forces")),
        schema="ingest",
    )
    op.create_table(
        "receipt_incidents",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("force_code", sa.String(length=10), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("last_change", sa.String(length=40), nullable=False),
        sa.Column("receipt_sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_receipt_incidents")),
        sa.UniqueConstraint("force_code", "change_seq",
                            name=op.f("uq_receipt_incidents_force_code")),
        schema="ingest",
    )
    op.create_table(
        "receipt_children",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("child_index", sa.SmallInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("school_urns", JSONB, nullable=False),
        sa.Column("la_code", sa.String(length=8)),
        sa.Column("decided_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "child_index", name=op.f("pk_receipt_children")),
        schema="ingest",
    )
    op.create_table(
        "receipt_notifications",
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("school_urn", sa.String(length=7)),
        sa.Column("la_code", sa.String(length=8)),
        sa.Column("recipient_role", sa.String(length=8), nullable=False),
        sa.Column("child_indexes", JSONB),
        sa.Column("child_indexes_at", TZ),
        sa.Column("retracted_children", JSONB, nullable=False, server_default="[]"),
        sa.Column("scheduled_at", TZ),
        sa.Column("push_at", TZ),
        sa.Column("deadline_at", TZ),
        sa.Column("pushed_at", TZ),
        sa.Column("first_viewed_at", TZ),
        sa.Column("acknowledged_at", TZ),
        sa.Column("escalations", JSONB, nullable=False, server_default="[]"),
        sa.Column("retracted_at", TZ),
        sa.Column("retract_reason", sa.String(length=24)),
        sa.Column("actions", JSONB, nullable=False, server_default="[]"),
        sa.PrimaryKeyConstraint("notification_id", name=op.f("pk_receipt_notifications")),
        schema="ingest",
    )
    op.create_index("ix_receipt_notifications_incident_id", "receipt_notifications",
                    ["incident_id"], schema="ingest")
    op.create_table(
        "receipt_webhooks",
        sa.Column("force_code", sa.String(length=10), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=256), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("force_code", name=op.f("pk_receipt_webhooks")),
        schema="ingest",
    )
    op.create_table(
        "receipt_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("force_code", sa.String(length=10), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ),
        sa.Column("last_error", sa.String(length=200)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt_deliveries")),
        schema="ingest",
    )
    op.create_index("ix_receipt_deliveries_pending", "receipt_deliveries", ["next_attempt_at"],
                    schema="ingest", postgresql_where=sa.text("status = 'pending'"))
    role = SERVICE_ROLES["ingest"]
    for table in TABLES:
        grant(f"ingest.{table}", DML, role=role)
    grant_sequences("ingest", role=role)


def downgrade() -> None:
    raise NotImplementedError("0012 is not reversible")
