"""notifier: its own copy of the registry, fed from registry.v1; no more reads of the matcher's

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 08:00:00.000000

The copy is seeded here from the matcher's tables (the owner may read both), so an upgraded
deployment routes at once; `daybreak registry republish` then puts every entity on the
compacted topic, from which the copy can be rebuilt alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.grants import DML, SERVICE_ROLES, grant

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

COPIED = ("schools", "school_calendar_days", "local_authorities")


def upgrade() -> None:
    op.create_table(
        "schools",
        sa.Column("urn", sa.String(length=7), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("la_code", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("participates", sa.Boolean(), nullable=False),
        sa.Column("day_starts_at", sa.Time(), nullable=False),
        sa.Column("contacts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("webhook", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("deputy_after_minutes", sa.SmallInteger(), nullable=False),
        sa.Column("la_after_minutes", sa.SmallInteger(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("urn", name="pk_schools"),
        schema="notifier",
    )
    op.create_table(
        "school_calendar_days",
        sa.Column("urn", sa.String(length=7), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=6), nullable=False),
        sa.PrimaryKeyConstraint("urn", "day", name="pk_school_calendar_days"),
        schema="notifier",
    )
    op.create_table(
        "local_authorities",
        sa.Column("la_code", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contacts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("la_code", name="pk_local_authorities"),
        schema="notifier",
    )
    op.execute("""INSERT INTO notifier.schools SELECT urn, name, la_code, status, participates,
        day_starts_at, contacts, webhook, deputy_after_minutes, la_after_minutes, updated_at
        FROM matcher.schools""")
    op.execute("INSERT INTO notifier.school_calendar_days SELECT urn, day, kind "
               "FROM matcher.school_calendar_days")
    op.execute("INSERT INTO notifier.local_authorities SELECT la_code, name, contacts, "
               "updated_at FROM matcher.local_authorities")
    role = SERVICE_ROLES["notifier"]
    for table in COPIED:
        op.execute(f'REVOKE ALL ON TABLE matcher."{table}" FROM "{role}"')
        grant(f"notifier.{table}", DML, role=role)
    op.execute(f'REVOKE USAGE ON SCHEMA matcher FROM "{role}"')


def downgrade() -> None:
    raise NotImplementedError("0007 is not reversible")
