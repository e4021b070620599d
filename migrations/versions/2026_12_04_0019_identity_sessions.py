"""identity: sessions, and an outbox that announces the sessions it ends

Revision ID: 0019
Revises: 0020
Create Date: 2026-12-04 09:00:00.000000

* identity.sessions: one row per token the identity service issues (the token's `sid`):
  whose (subject, kind), when it was issued and expires, and when and why it was revoked
  (services/identity/sessions.py). Ids and times only.
* identity.outbox and identity.outbox_inflight, shaped as every other service's (copied from
  the notifier's with LIKE ... INCLUDING ALL, so they cannot drift): the identity service
  stages `SessionsRevoked` on identity-revocations.v1 there in the transaction that ends the
  sessions, and its relay publishes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.grants import DML, SERVICE_ROLES, grant, grant_sequences

revision: str = "0019"
down_revision: str | None = "0020"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("sid", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.String(length=32)),
        sa.CheckConstraint("kind IN ('user', 'client')", name=op.f("ck_sessions_kind")),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_sessions")),
        schema="identity",
    )
    op.create_index("ix_sessions_live", "sessions", ["subject", "expires_at"],
                    schema="identity", postgresql_where=sa.text("revoked_at IS NULL"))
    for table in ("outbox", "outbox_inflight"):
        op.execute(f'CREATE TABLE identity."{table}" (LIKE notifier."{table}" INCLUDING ALL)')
    role = SERVICE_ROLES["identity"]
    for table in ("identity.sessions", "identity.outbox", "identity.outbox_inflight"):
        grant(table, DML, role=role)
    grant_sequences("identity", role=role)


def downgrade() -> None:
    raise NotImplementedError("0019 is not reversible")
