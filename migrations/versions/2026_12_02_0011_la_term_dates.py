"""LA term dates: the default calendar of every school in the LA without its own

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 12:00:00.000000

* matcher.la_calendar_days: an LA's published term dates (closed days, and open ones), the
  calendar of each of its schools that has no term dates of its own.
* matcher.school_calendar_days.source: 'term' (the school's own term dates, from its .ics)
  or 'override' (the rows of the calendar CSV, as every existing row is); a school may hold
  both for one day (the override wins), so the source joins the primary key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.grants import DML, SERVICE_ROLES, grant

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "la_calendar_days",
        sa.Column("la_code", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=6), nullable=False),
        sa.CheckConstraint("kind IN ('closed', 'open')", name=op.f("ck_la_calendar_days_kind")),
        sa.PrimaryKeyConstraint("la_code", "day", name=op.f("pk_la_calendar_days")),
        schema="matcher",
    )
    grant("matcher.la_calendar_days", DML, role=SERVICE_ROLES["matcher"])
    op.add_column("school_calendar_days", sa.Column(
        "source", sa.String(length=8), nullable=False, server_default="override"),
        schema="matcher")
    op.create_check_constraint(op.f("ck_school_calendar_days_source"), "school_calendar_days",
                               "source IN ('term', 'override')", schema="matcher")
    op.drop_constraint("pk_school_calendar_days", "school_calendar_days", type_="primary",
                       schema="matcher")
    op.create_primary_key("pk_school_calendar_days", "school_calendar_days",
                          ["urn", "source", "day"], schema="matcher")


def downgrade() -> None:
    raise NotImplementedError("0011 is not reversible")
