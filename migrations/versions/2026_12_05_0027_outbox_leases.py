"""every service: the outbox relay's lease, in place of a session advisory lock

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 09:00:00.000000

* <schema>.outbox_leases, beside each service's outbox: one row per source, the relay that
  leads it (holder), until when (expires_at, the database's clock) and the take-over it
  holds (epoch, bumped by each). A relay renews it in short transactions and renews it again
  in every transaction that records a batch in flight or marks rows published, so a relay
  that lost it writes nothing more (services/common/lease.py). No connection stays open
  between transactions, so PgBouncer's transaction mode serves the relays too.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.grants import DML, SERVICE_ROLES, grant

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    for schema, role in SERVICE_ROLES.items():
        op.create_table(
            "outbox_leases",
            sa.Column("source", sa.String(length=32), nullable=False),
            sa.Column("holder", sa.Uuid(), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("epoch", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("source", name="pk_outbox_leases"),
            schema=schema,
        )
        grant(f"{schema}.outbox_leases", DML, role=role)


def downgrade() -> None:
    for schema in SERVICE_ROLES:
        op.drop_table("outbox_leases", schema=schema)
