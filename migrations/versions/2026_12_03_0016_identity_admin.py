"""identity: every change an admin makes to people and police clients, recorded

Revision ID: 0016
Revises: 0011
Create Date: 2026-12-03 09:00:00.000000

* identity.account_changes: who (the admin's subject), when, what (the action), to whom
  (a user's id or a client's id) and a few facts (role, force); never a password, a TOTP
  secret or a client secret. The identity role may only INSERT and SELECT: the record is
  kept, not edited.
* identity.api_clients.secret_rotated_at: when the client's secret was last replaced.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.grants import SERVICE_ROLES, grant, grant_sequences

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target_kind", sa.String(length=8), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("facts", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                  server_default="{}"),
        sa.CheckConstraint("target_kind IN ('user', 'client')",
                           name=op.f("ck_account_changes_target_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_changes")),
        schema="identity",
    )
    op.create_index("ix_account_changes_target", "account_changes",
                    ["target_kind", "target_id", "changed_at"], schema="identity")
    op.add_column("api_clients", sa.Column("secret_rotated_at", sa.DateTime(timezone=True)),
                  schema="identity")
    role = SERVICE_ROLES["identity"]
    grant("identity.account_changes", "SELECT, INSERT", role=role)
    grant_sequences("identity", role=role)


def downgrade() -> None:
    raise NotImplementedError("0016 is not reversible")
