"""retention: each service purges its own content; the audit role loses its last cross grants

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:00:00.000000

The notifier erases its notifications' content and the matcher its reviews', each announcing
the purge on disclosures.v1 in the same transaction; the audit service only logs it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from migrations.grants import SERVICE_ROLES

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

WERE_PURGED_BY_AUDIT = ("notifier.notifications", "notifier.notification_children",
                        "matcher.reviews")


def upgrade() -> None:
    role = SERVICE_ROLES["audit"]
    for table in WERE_PURGED_BY_AUDIT:
        schema, name = table.split(".")
        op.execute(f'REVOKE ALL ON TABLE "{schema}"."{name}" FROM "{role}"')
    for schema in ("notifier", "matcher"):
        op.execute(f'REVOKE USAGE ON SCHEMA "{schema}" FROM "{role}"')


def downgrade() -> None:
    raise NotImplementedError("0009 is not reversible")
