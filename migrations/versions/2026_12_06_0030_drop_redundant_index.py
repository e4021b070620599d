"""notifier: drop ix_notifications_incident_id, which the unique (incident_id, recipient_key) covers

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 10:00:00.000000

Every lookup by incident uses the unique constraint's index, whose first column is
incident_id; the second index only cost each new notification one more index entry (eleven
indexes on the table, the busiest the notifier writes).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_notifications_incident_id", "notifications", schema="notifier")


def downgrade() -> None:
    op.create_index("ix_notifications_incident_id", "notifications", ["incident_id"],
                    schema="notifier")
