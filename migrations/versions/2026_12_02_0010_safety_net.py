"""safety net: every open item has an owner, a deadline and a next person

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 08:00:00.000000

* ingest.forces.default_la_code: where a child with no usable address or hint goes.
* local authorities (the matcher's registry and the notifier's copy): how many minutes
  before a deadline the LA's duty manager is called, and the attendance follow-up times.
* matcher.reviews: the review's deadline (the earliest school-day start among its candidate
  schools) and a cross-LA handover waiting for the other LA to accept it.
* notifier.notifications: when the LA became responsible, when its duty manager is next
  called, and the attendance follow-up; notification_children: attendance per child and the
  school a child reached the LA through; notifier_emails: which notifications a mail is about.
* notifier.review_alerts: the LA's open reviews as the notifier chases them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.grants import DML, SERVICE_ROLES, grant

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def _la_settings(schema: str) -> None:
    op.add_column("local_authorities", sa.Column(
        "escalation_before_minutes", sa.SmallInteger(), nullable=False, server_default="30"),
        schema=schema)
    op.add_column("local_authorities", sa.Column(
        "attendance_prompt_at", sa.Time(), nullable=False, server_default="10:00"),
        schema=schema)
    op.add_column("local_authorities", sa.Column(
        "attendance_la_at", sa.Time(), nullable=False, server_default="12:00"), schema=schema)


def upgrade() -> None:
    op.add_column("forces", sa.Column("default_la_code", sa.String(length=8)), schema="ingest")
    _la_settings("matcher")
    _la_settings("notifier")
    for column in (sa.Column("deadline_at", TZ), sa.Column("handover_to", sa.String(length=8)),
                   sa.Column("handover_by", sa.String(length=64)), sa.Column("handover_at", TZ)):
        op.add_column("reviews", column, schema="matcher")
    for column in (sa.Column("deadline_at", TZ), sa.Column("la_since", TZ),
                   sa.Column("duty_at", TZ),
                   sa.Column("duty_calls", sa.SmallInteger(), nullable=False,
                             server_default="0"),
                   sa.Column("attendance_prompt_at", TZ), sa.Column("attendance_la_at", TZ),
                   sa.Column("attendance_stage", sa.SmallInteger(), nullable=False,
                             server_default="0")):
        op.add_column("notifications", column, schema="notifier")
    op.create_index("ix_notifications_duty", "notifications", ["duty_at"], schema="notifier",
                    postgresql_where=sa.text("acknowledged_at IS NULL AND duty_at IS NOT NULL"))
    op.create_index("ix_notifications_attendance", "notifications", ["attendance_prompt_at"],
                    schema="notifier",
                    postgresql_where=sa.text("attendance_stage < 2 "
                                             "AND attendance_prompt_at IS NOT NULL"))
    for column in (sa.Column("attended", sa.Boolean()), sa.Column("attendance_at", TZ),
                   sa.Column("attendance_by", sa.String(length=64)),
                   sa.Column("via_school_urn", sa.String(length=7)),
                   sa.Column("via_school_name", sa.String(length=200))):
        op.add_column("notification_children", column, schema="notifier")
    op.add_column("notifier_emails", sa.Column(
        "notification_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
        server_default="[]"), schema="notifier")
    op.add_column("notifier_emails", sa.Column("handed_on_at", TZ), schema="notifier")
    op.create_table(
        "review_alerts",
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("child_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("la_code", sa.String(length=8), nullable=False),
        sa.Column("deadline_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("alert_at", TZ, nullable=False),
        sa.Column("alerted_at", TZ),
        sa.Column("duty_at", TZ, nullable=False),
        sa.Column("duty_calls", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("resolved_at", TZ),
        sa.Column("resolution", sa.String(length=32)),
        sa.PrimaryKeyConstraint("review_id", name="pk_review_alerts"),
        sa.UniqueConstraint("child_id", name="uq_review_alerts_child_id"),
        schema="notifier",
    )
    op.create_index("ix_review_alerts_open", "review_alerts", ["duty_at"], schema="notifier",
                    postgresql_where=sa.text("resolved_at IS NULL"))
    grant("notifier.review_alerts", DML, role=SERVICE_ROLES["notifier"])


def downgrade() -> None:
    raise NotImplementedError("0010 is not reversible")
