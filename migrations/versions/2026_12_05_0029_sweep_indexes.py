"""notifier: partial indexes for the sweeps that read the whole notifications table each pass

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05 10:00:00.000000

Three passes that run every few seconds had no index to use, so each read every notification
ever kept (bench.e2e --statements: 3,480-3,610 pages a call on a 16,000-incident table; at a
year's 2.4 million a pass would read a gigabyte):

* ix_notifications_attendance_unplanned: the attendance follow-up's planning (a DSL's
  notification whose prompt and hand-over times are not yet set), by when it was pushed.
* ix_notifications_attendance_la: the follow-up's hand-over to the LA, by when it is due.
* ix_notifications_awaiting: notifications pushed and not yet acknowledged, which the
  dispatcher's escalation steps read beside ix_notifications_due's first pushes (a BitmapOr).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_notifications_attendance_unplanned", "notifications",
                    [sa.text("coalesce(sent_at, push_at)")], schema="notifier",
                    postgresql_where=sa.text(
                        "attendance_stage = 0 AND attendance_prompt_at IS NULL "
                        "AND school_urn IS NOT NULL AND recipient_role = 'dsl'"))
    op.create_index("ix_notifications_attendance_la", "notifications", ["attendance_la_at"],
                    schema="notifier", postgresql_where=sa.text(
                        "attendance_stage < 2 AND attendance_la_at IS NOT NULL"))
    op.create_index("ix_notifications_awaiting", "notifications", ["push_at"],
                    schema="notifier", postgresql_where=sa.text(
                        "state IN ('sent', 'viewed', 'escalated')"))


def downgrade() -> None:
    for name in ("ix_notifications_awaiting", "ix_notifications_attendance_la",
                 "ix_notifications_attendance_unplanned"):
        op.drop_index(name, "notifications", schema="notifier")
