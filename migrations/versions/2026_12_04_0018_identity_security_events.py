"""identity: sign-in security events, and failed sign-ins counted by address too

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 09:00:00.000000

* identity.security_events: every sign-in, failed sign-in and throttled refusal (which door,
  what happened, a digest of the login, the client's address and user agent); never the
  e-mail or a secret. The identity role adds, reads and purges them (180 days by default).
* identity.auth_failures.client_address: where a failure came from (an IPv6 /64), so the
  throttle counts per login and address, per address and per login. Rows from before have
  none and count only towards their login's ceiling until they age out of the window.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.grants import SERVICE_ROLES, grant, grant_sequences

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "security_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("client_address", sa.String(length=45), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False, server_default=""),
        sa.CheckConstraint("kind IN ('client_token', 'user_session')",
                           name=op.f("ck_security_events_kind")),
        sa.CheckConstraint("outcome IN ('success', 'failure', 'throttled')",
                           name=op.f("ck_security_events_outcome")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
        schema="identity",
    )
    op.create_index("ix_security_events_at", "security_events", ["at"], schema="identity")
    op.add_column("auth_failures", sa.Column("client_address", sa.String(length=64)),
                  schema="identity")
    op.create_index("ix_auth_failures_address", "auth_failures",
                    ["client_address", "failed_at"], schema="identity")
    role = SERVICE_ROLES["identity"]
    grant("identity.security_events", "SELECT, INSERT, DELETE", role=role)
    grant_sequences("identity", role=role)


def downgrade() -> None:
    op.drop_index("ix_auth_failures_address", table_name="auth_failures", schema="identity")
    op.drop_column("auth_failures", "client_address", schema="identity")
    op.drop_index("ix_security_events_at", table_name="security_events", schema="identity")
    op.drop_table("security_events", schema="identity")
