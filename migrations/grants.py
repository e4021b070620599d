"""Least-privilege grants: each service's database role, used by every revision."""

from __future__ import annotations

import os
import re

from alembic import op
from sqlalchemy.engine import make_url

# Each service connects as `daybreak_<service>` and owns the schema named after it.
SERVICE_ROLES = {svc: f"daybreak_{svc}"
                 for svc in ("ingest", "matcher", "notifier", "audit", "identity")}
DML = "SELECT, INSERT, UPDATE, DELETE"


def app_role() -> str:
    """The retired shared role of revisions 0001-0005 (revision 0006 revokes all it had)."""
    role = os.environ.get("DAYBREAK_APP_ROLE")
    if not role:
        url = os.environ.get("DAYBREAK_DATABASE_URL")
        role = make_url(url).username if url else None
    role = role or "daybreak_app"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise SystemExit("application role name is not a plain identifier")
    return role


def grant(table: str, privileges: str = DML, *, role: str | None = None) -> None:
    """Grant a role (the retired shared role unless named) exactly these privileges."""
    op.execute(f'GRANT {privileges} ON TABLE {_qualified(table)} TO "{role or app_role()}"')


def grant_sequences(schema: str = "public", *, role: str | None = None) -> None:
    """Let a role draw identity values in one schema."""
    op.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role or app_role()}"')


def _qualified(table: str) -> str:
    return ".".join(f'"{part}"' for part in table.split("."))
