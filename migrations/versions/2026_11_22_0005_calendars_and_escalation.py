"""matcher: school calendar overrides and per-school escalation minutes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 23:59:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.grants import grant

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "school_calendar_days",
        sa.Column("urn", sa.String(length=7), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=6), nullable=False),
        sa.CheckConstraint("kind IN ('closed', 'open')",
                           name=op.f("ck_school_calendar_days_kind")),
        sa.PrimaryKeyConstraint("urn", "day", name=op.f("pk_school_calendar_days")),
    )
    op.add_column("schools", sa.Column("deputy_after_minutes", sa.SmallInteger(),
                                       server_default="60", nullable=False))
    op.add_column("schools", sa.Column("la_after_minutes", sa.SmallInteger(),
                                       server_default="120", nullable=False))
    # the matcher owns the calendars; the app role (matcher writes, notifier reads) uses them
    grant("school_calendar_days")


def downgrade() -> None:
    op.drop_column("schools", "la_after_minutes")
    op.drop_column("schools", "deputy_after_minutes")
    op.drop_table("school_calendar_days")
