"""Least-privilege grants for the application role, used by every revision."""

from __future__ import annotations

import os
import re

from alembic import op
from sqlalchemy.engine import make_url


def app_role() -> str:
    """The application's role: DAYBREAK_APP_ROLE, else the user in DAYBREAK_DATABASE_URL."""
    role = os.environ.get("DAYBREAK_APP_ROLE")
    if not role:
        url = os.environ.get("DAYBREAK_DATABASE_URL")
        role = make_url(url).username if url else None
    role = role or "daybreak_app"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise SystemExit("application role name is not a plain identifier")
    return role


def grant(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    """Grant the application role exactly these privileges on one table."""
    op.execute(f'GRANT {privileges} ON TABLE "{table}" TO "{app_role()}"')


def grant_sequences() -> None:
    """Let the application role draw identity values."""
    op.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{app_role()}"')
