"""The partnership's figures: a read model of `notifications.v1`, codes and times only

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-03 12:00:00.000000

* notifier.figures_notifications: one row per notification (its LA, force, school, when it was
  scheduled, its deadline, and when it was first pushed, viewed, acknowledged, escalated or
  withdrawn; how many of its children were told about before in 12 months).
* notifier.figures_actions: one row per action recorded (an acknowledgement's, or one added
  later), keyed by the event that carried it and its place in it.
* notifier.figures_children: one row per reported child, its latest outcome.
* notifier.figures_reviews: one row per review, when it was opened and resolved.

No child data: the events carry none. Built by the notifier's `figures` consumer group.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.grants import DML, SERVICE_ROLES, grant

revision: str = "0015"
down_revision: str | None = "0011"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "figures_notifications",
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("force_code", sa.String(length=10), nullable=False),
        sa.Column("la_code", sa.String(length=8)),
        sa.Column("school_urn", sa.String(length=7)),
        sa.Column("recipient_role", sa.String(length=8)),
        sa.Column("scheduled_at", _AT),
        sa.Column("last_scheduled_at", _AT),
        sa.Column("push_at", _AT),
        sa.Column("deadline_at", _AT),
        sa.Column("repeat_children", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("repeats", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("pushed_at", _AT),
        sa.Column("viewed_at", _AT),
        sa.Column("acknowledged_at", _AT),
        sa.Column("escalated_deputy_at", _AT),
        sa.Column("escalated_la_at", _AT),
        sa.Column("retracted_at", _AT),
        sa.PrimaryKeyConstraint("notification_id", name=op.f("pk_figures_notifications")),
        schema="notifier",
    )
    op.create_index(op.f("ix_figures_notifications_la_code_scheduled_at"),
                    "figures_notifications", ["la_code", "scheduled_at"], schema="notifier")
    op.create_table(
        "figures_actions",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("action_type", sa.String(length=32), nullable=False),
        sa.Column("action_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("event_id", "position", name=op.f("pk_figures_actions")),
        schema="notifier",
    )
    op.create_index(op.f("ix_figures_actions_notification_id"), "figures_actions",
                    ["notification_id"], schema="notifier")
    op.create_table(
        "figures_children",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("child_index", sa.Integer(), nullable=False),
        sa.Column("force_code", sa.String(length=10)),
        sa.Column("la_code", sa.String(length=8)),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("decided_by", sa.String(length=8)),
        sa.Column("decided_at", _AT, nullable=False),
        sa.CheckConstraint("outcome IN ('matched', 'review', 'unmatched')",
                           name=op.f("ck_figures_children_outcome")),
        sa.PrimaryKeyConstraint("incident_id", "child_index", name=op.f("pk_figures_children")),
        schema="notifier",
    )
    op.create_index(op.f("ix_figures_children_la_code_decided_at"), "figures_children",
                    ["la_code", "decided_at"], schema="notifier")
    op.create_table(
        "figures_reviews",
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("child_index", sa.Integer(), nullable=False),
        sa.Column("force_code", sa.String(length=10)),
        sa.Column("la_code", sa.String(length=8)),
        sa.Column("opened_at", _AT),
        sa.Column("resolved_at", _AT),
        sa.PrimaryKeyConstraint("review_id", name=op.f("pk_figures_reviews")),
        schema="notifier",
    )
    op.create_index(op.f("ix_figures_reviews_la_code"), "figures_reviews", ["la_code"],
                    schema="notifier")
    for table in ("figures_notifications", "figures_actions", "figures_children",
                  "figures_reviews"):
        grant(f"notifier.{table}", DML, role=SERVICE_ROLES["notifier"])


def downgrade() -> None:
    raise NotImplementedError("0015 is not reversible")
