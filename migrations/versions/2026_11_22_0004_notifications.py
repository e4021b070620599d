"""notifier: notifications, their children, outgoing e-mails, sign-in links, webhooks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 23:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.grants import grant, grant_sequences

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_JSONB = postgresql.JSONB(astext_type=sa.Text())
_TS = sa.DateTime(timezone=True)
_TABLES = (
    "notifications", "notification_children", "notifier_withdrawn_incidents",
    "notifier_emails", "notifier_sign_in_links", "notifier_webhook_deliveries",
)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_key", sa.String(length=32), nullable=False),
        sa.Column("school_urn", sa.String(length=7), nullable=True),
        sa.Column("la_code", sa.String(length=8), nullable=True),
        sa.Column("recipient_role", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("incident", _JSONB, nullable=False),
        sa.Column("push_at", _TS, nullable=False),
        sa.Column("deputy_at", _TS, nullable=True),
        sa.Column("la_at", _TS, nullable=True),
        sa.Column("escalations_sent", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("viewed_at", _TS, nullable=True),
        sa.Column("acknowledged_at", _TS, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("action_taken", sa.Text(), nullable=True),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("email_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("incident_id", "recipient_key",
                            name=op.f("uq_notifications_incident_id_recipient_key")),
    )
    op.create_index(op.f("ix_notifications_incident_id"), "notifications", ["incident_id"])
    op.create_index(op.f("ix_notifications_school_urn"), "notifications", ["school_urn"])
    op.create_index(op.f("ix_notifications_la_code"), "notifications", ["la_code"])
    op.create_index("ix_notifications_due", "notifications", ["push_at"],
                    postgresql_where=sa.text("state = 'scheduled'"))
    op.create_table(
        "notification_children",
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("child_id", sa.Uuid(), nullable=False),
        sa.Column("child_key", sa.String(length=64), nullable=False),
        sa.Column("child", _JSONB, nullable=False),
        sa.Column("unmatched_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"], ["notifications.id"], ondelete="CASCADE",
            name=op.f("fk_notification_children_notification_id_notifications"),
        ),
        sa.PrimaryKeyConstraint("notification_id", "child_id",
                                name=op.f("pk_notification_children")),
    )
    op.create_table(
        "notifier_withdrawn_incidents",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("withdrawn_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_notifier_withdrawn_incidents")),
    )
    op.create_table(
        "notifier_emails",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("to_addrs", _JSONB, nullable=False),
        sa.Column("school_urn", sa.String(length=7), nullable=True),
        sa.Column("la_code", sa.String(length=8), nullable=True),
        sa.Column("subject_name", sa.String(length=200), nullable=False),
        sa.Column("count", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifier_emails")),
    )
    op.create_index("ix_notifier_emails_pending", "notifier_emails", ["next_attempt_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_table(
        "notifier_sign_in_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email_id", sa.Uuid(), nullable=False),
        sa.Column("school_urn", sa.String(length=7), nullable=True),
        sa.Column("la_code", sa.String(length=8), nullable=True),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_notifier_sign_in_links")),
    )
    op.create_table(
        "notifier_webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("school_urn", sa.String(length=7), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifier_webhook_deliveries")),
    )
    op.create_index("ix_notifier_webhook_deliveries_pending", "notifier_webhook_deliveries",
                    ["next_attempt_at"], postgresql_where=sa.text("status = 'pending'"))
    for table in _TABLES:
        grant(table)
    # the matcher owns the registry; the notifier only reads contacts and school days
    grant("schools", "SELECT")
    grant("local_authorities", "SELECT")
    grant_sequences()


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
