"""identity: what a person sees of their own sessions, and the security events of ending them

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 09:00:00.000000

* identity.sessions.method, client_address, user_agent: how the session was signed in
  (`password` for a person, `client` for a police client's credentials), and the address and
  user agent the sign-in came from (services/identity/security_events.Attempt), so that a
  person can tell their sessions apart on `GET /v1/sessions` (ASVS 7.5.2). NULL on the rows
  from before: those sessions end within the hour.
* identity.security_events.kind takes `reauthentication` (the password and code asked again
  before a session is ended) and `session_end` (a person ended one or more of their own).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_OLD_KINDS = "kind IN ('client_token', 'user_session')"
_NEW_KINDS = "kind IN ('client_token', 'user_session', 'reauthentication', 'session_end')"


def upgrade() -> None:
    op.add_column("sessions", sa.Column("method", sa.String(length=8)), schema="identity")
    op.add_column("sessions", sa.Column("client_address", sa.String(length=45)),
                  schema="identity")
    op.add_column("sessions", sa.Column("user_agent", sa.String(length=200)), schema="identity")
    op.create_check_constraint(op.f("ck_sessions_method"), "sessions",
                               "method IN ('password', 'client')", schema="identity")
    op.drop_constraint(op.f("ck_security_events_kind"), "security_events", schema="identity")
    op.create_check_constraint(op.f("ck_security_events_kind"), "security_events", _NEW_KINDS,
                               schema="identity")


def downgrade() -> None:
    op.execute("DELETE FROM identity.security_events "
               "WHERE kind IN ('reauthentication', 'session_end')")
    op.drop_constraint(op.f("ck_security_events_kind"), "security_events", schema="identity")
    op.create_check_constraint(op.f("ck_security_events_kind"), "security_events", _OLD_KINDS,
                               schema="identity")
    op.drop_constraint(op.f("ck_sessions_method"), "sessions", schema="identity")
    for column in ("user_agent", "client_address", "method"):
        op.drop_column("sessions", column, schema="identity")
