"""identity: TOTP secrets sealed at rest (AES-GCM under a key file outside the database)

Revision ID: 0020
Revises: 0021
Create Date: 2026-12-04 09:00:00.000000

* identity.users.totp_secret_enc: the TOTP secret sealed with the key named by
  DAYBREAK_IDENTITY_TOTP_KEY_FILE (services/identity/totp_vault.py), the user's id as
  associated data.
* identity.users.totp_secret becomes nullable: a migration cannot reach the key file, so
  existing secrets stay in the clear until the identity service seals them at startup (and
  sign-in seals any it reads meanwhile); every new or re-enrolled secret is sealed at once.
  A row holds one or the other (ck_users_totp_stored).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0021"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("totp_secret_enc", sa.LargeBinary()), schema="identity")
    op.alter_column("users", "totp_secret", existing_type=sa.String(length=64),
                    nullable=True, schema="identity")
    op.create_check_constraint(
        op.f("ck_users_totp_stored"), "users",
        "totp_secret IS NOT NULL OR totp_secret_enc IS NOT NULL", schema="identity")


def downgrade() -> None:
    raise NotImplementedError("0020 is not reversible")
