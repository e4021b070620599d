"""the child's history, the LA's partner directory, structured actions

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-03 12:00:00.000000

* notifier.notification_actions: what a school (or LA) did about a notification, one row per
  action: a type from schemas.notifications.ACTION_TYPES, the day, an optional note in the
  school's own words; recorded with the acknowledgement or later as a follow-up.
* notifier.partners: each LA's partner directory, one row per entry in the LA's order, kept
  by its officers (replaced whole on every change).
* an index on notification_children.child_key: the child's history looks its key up.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.grants import DML, SERVICE_ROLES, grant, grant_sequences

revision: str = "0014"
down_revision: str | None = "0015"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
ROLE = SERVICE_ROLES["notifier"]


def upgrade() -> None:
    op.create_table(
        "notification_actions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"], ["notifier.notifications.id"], ondelete="CASCADE",
            name=op.f("fk_notification_actions_notification_id_notifications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_actions")),
        schema="notifier",
    )
    op.create_index(op.f("ix_notification_actions_notification_id"), "notification_actions",
                    ["notification_id"], schema="notifier")
    op.create_table(
        "partners",
        sa.Column("la_code", sa.String(length=8), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("need_type", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("web", sa.String(length=500), nullable=True),
        sa.Column("hours", sa.String(length=200), nullable=True),
        sa.Column("guidance", sa.String(length=1000), nullable=True),
        sa.Column("changed_at", TZ, nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("la_code", "position", name=op.f("pk_partners")),
        schema="notifier",
    )
    op.create_index(op.f("ix_notification_children_child_key"), "notification_children",
                    ["child_key"], schema="notifier")
    for table in ("notification_actions", "partners"):
        grant(f"notifier.{table}", DML, role=ROLE)
    grant_sequences("notifier", role=ROLE)


def downgrade() -> None:
    raise NotImplementedError("0014 is not reversible")
