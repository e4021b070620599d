"""audit: every column in the entry hash, by a hash-format version per row

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-03 18:00:00.000000

* audit.audit_events.hash_version: which fields the row's hash covers. Every row already
  logged is version 1 (the contract's fields: id, at, actor, actor_role, action, channel,
  school_urn, child_key, notification_id, purpose, prev_hash) and keeps verifying as it was
  sealed: its la_code, review_id, incident_id and recorded_at stay protected by the
  append-only trigger alone. Every row written from now on is version 2, whose hash covers
  every column but seq and hash (services/audit/chain.py), and versions never go down along
  the chain. The column has no default, so a writer must say which format it sealed.

Adding a column is no UPDATE: the append-only trigger stays on and no row is rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("hash_version", sa.SmallInteger(), nullable=False,
                                            server_default="1"), schema="audit")
    op.alter_column("audit_events", "hash_version", server_default=None, schema="audit")


def downgrade() -> None:
    # refused while version-2 rows exist: dropping the column would leave their hashes
    # unverifiable under version 1
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM audit.audit_events WHERE hash_version <> 1) THEN
                RAISE EXCEPTION 'audit rows sealed with hash version 2 exist: not downgrading';
            END IF;
        END
        $$
        """
    )
    op.drop_column("audit_events", "hash_version", schema="audit")
