"""identity: the accounts tables move into its schema; no other role may read them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00.000000

Police clients, people (password hashes, TOTP secrets) and sign-in failures belong to the
identity service, the one token issuer; the other services relay sign-ins to it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from migrations.grants import DML, SERVICE_ROLES, grant, grant_sequences

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

ACCOUNTS = ("api_clients", "users", "auth_failures")


def upgrade() -> None:
    op.execute('CREATE SCHEMA "identity"')
    for table in ACCOUNTS:
        op.execute(f'ALTER TABLE public."{table}" SET SCHEMA "identity"')
    for role in SERVICE_ROLES.values():
        for table in ACCOUNTS:
            op.execute(f'REVOKE ALL ON TABLE "identity"."{table}" FROM "{role}"')
        op.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{role}"')
        op.execute(f'REVOKE ALL ON SCHEMA public FROM "{role}"')
    role = SERVICE_ROLES["identity"]
    op.execute(f'GRANT USAGE ON SCHEMA "identity" TO "{role}"')
    for table in ACCOUNTS:
        grant(f"identity.{table}", DML, role=role)
    grant_sequences("identity", role=role)


def downgrade() -> None:
    raise NotImplementedError("0008 is not reversible")
