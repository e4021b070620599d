"""corrections: every version of an incident kept, children withdrawn one by one, re-matches

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-03 09:00:00.000000

* ingest.incident_versions: one row per version of each incident (the first one too, filled
  in for incidents already kept): its body's digest and one digest per child, so a correction
  can tell which children it changed without ingest keeping any child data.
* ingest.incidents.version: the incident's current version.
* ingest.incident_child_withdrawals: the children police withdrew alone (or dropped in a
  correction).
* matcher.match_decisions.version and matcher.reviews.version: which version of the report a
  decision or a review is about; a child may now have one review per version.
* notifier.notifications.incident_version and .changes (what police changed after the
  recipient had read it: versions, times and field names, never values);
  notifier.notification_children.version; notifier.notifier_child_versions: the newest
  version of each corrected or withdrawn child the notifier has applied, so a late, older
  decision never replaces a newer one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.grants import DML, SERVICE_ROLES, grant

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def _version() -> sa.Column[int]:
    return sa.Column("version", sa.SmallInteger(), nullable=False, server_default="1")


def upgrade() -> None:
    op.create_table(
        "incident_versions",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.SmallInteger(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("child_digests", postgresql.JSONB(astext_type=sa.Text())),
        sa.Column("received_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "version", name=op.f("pk_incident_versions")),
        schema="ingest",
    )
    op.execute("INSERT INTO ingest.incident_versions (incident_id, version, body_sha256, "
               "received_at) SELECT incident_id, 1, body_sha256, received_at "
               "FROM ingest.incidents")
    op.add_column("incidents", _version(), schema="ingest")
    op.create_table(
        "incident_child_withdrawals",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("child_index", sa.SmallInteger(), nullable=False),
        sa.Column("withdrawn_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "child_index",
                                name=op.f("pk_incident_child_withdrawals")),
        schema="ingest",
    )
    for table in ("ingest.incident_versions", "ingest.incident_child_withdrawals"):
        grant(table, DML, role=SERVICE_ROLES["ingest"])

    op.add_column("match_decisions", _version(), schema="matcher")
    op.add_column("reviews", _version(), schema="matcher")
    op.drop_constraint("uq_reviews_child_id", "reviews", type_="unique", schema="matcher")
    op.create_unique_constraint(op.f("uq_reviews_child_id_version"), "reviews",
                                ["child_id", "version"], schema="matcher")

    op.add_column("notifications", sa.Column(
        "incident_version", sa.SmallInteger(), nullable=False, server_default="1"),
        schema="notifier")
    op.add_column("notifications", sa.Column(
        "changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
        server_default="[]"), schema="notifier")
    op.add_column("notification_children", _version(), schema="notifier")
    op.create_table(
        "notifier_child_versions",
        sa.Column("child_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.SmallInteger(), nullable=False),
        sa.Column("withdrawn_at", TZ),
        sa.PrimaryKeyConstraint("child_id", name=op.f("pk_notifier_child_versions")),
        schema="notifier",
    )
    grant("notifier.notifier_child_versions", DML, role=SERVICE_ROLES["notifier"])


def downgrade() -> None:
    raise NotImplementedError("0013 is not reversible")
