"""The identity service's tables: police API clients, people, failed sign-ins, security events.

No other service reads them: they verify tokens with the published public keys instead.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.common.db import metadata

api_clients = Table(
    "api_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("force_code", String(10), nullable=False, index=True),
    Column("secret_hash", Text, nullable=False),
    Column("scopes", ARRAY(String(64)), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("disabled_at", DateTime(timezone=True)),
    Column("secret_rotated_at", DateTime(timezone=True)),
    schema="identity",
)

users = Table(
    "users",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    # the TOTP secret sealed with the key file's AES-GCM key (services/identity/totp_vault.py);
    # `totp_secret` holds one in the clear only on a row from before 0020, until sealed
    Column("totp_secret", String(64)),
    Column("totp_secret_enc", LargeBinary),
    Column("role", String(32), nullable=False),
    Column("school_urns", ARRAY(String(7)), nullable=False, server_default="{}"),
    Column("la_codes", ARRAY(String(8)), nullable=False, server_default="{}"),
    Column("last_totp_step", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("disabled_at", DateTime(timezone=True)),
    CheckConstraint("totp_secret IS NOT NULL OR totp_secret_enc IS NOT NULL",
                    name="totp_stored"),
    schema="identity",
)

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("subject_hash", String(64), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # where the guess came from, as services/identity/throttle.py counts it (an IPv6 /64)
    Column("client_address", String(64)),
    schema="identity",
)
Index("ix_auth_failures_subject", auth_failures.c.subject_hash, auth_failures.c.failed_at)
Index("ix_auth_failures_address", auth_failures.c.client_address, auth_failures.c.failed_at)

# every sign-in, failed sign-in and throttled refusal (services/identity/security_events.py):
# a digest of the login, never the e-mail or a secret
security_events = Table(
    "security_events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("subject_hash", String(64), nullable=False),
    Column("client_address", String(45), nullable=False),
    Column("user_agent", String(200), nullable=False, server_default=""),
    CheckConstraint("kind IN ('client_token', 'user_session', 'reauthentication', "
                    "'session_end')", name="kind"),
    CheckConstraint("outcome IN ('success', 'failure', 'throttled')", name="outcome"),
    schema="identity",
)
Index("ix_security_events_at", security_events.c.at)

# what admins did to people and clients (services/identity/account_admin.py): who, when,
# what, to whom and a few facts; never a secret. The identity role may only add and read.
account_changes = Table(
    "account_changes",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_kind", String(8), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("facts", JSONB, nullable=False, server_default="{}"),
    CheckConstraint("target_kind IN ('user', 'client')", name="target_kind"),
    schema="identity",
)
Index("ix_account_changes_target", account_changes.c.target_kind, account_changes.c.target_id,
      account_changes.c.changed_at)

# one row per token issued (its `sid`): a revocation ends the row, and every token of it
# (services/identity/sessions.py); expired rows are kept no longer than retention asks
sessions = Table(
    "sessions",
    metadata,
    Column("sid", Uuid, primary_key=True),
    Column("subject", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("reason", String(32)),
    # how it was signed in and from where (what its person sees on GET /v1/sessions; 0028)
    Column("method", String(8)),
    Column("client_address", String(45)),
    Column("user_agent", String(200)),
    CheckConstraint("kind IN ('user', 'client')", name="kind"),
    CheckConstraint("method IN ('password', 'client')", name="method"),
    schema="identity",
)
Index("ix_sessions_live", sessions.c.subject, sessions.c.expires_at,
      postgresql_where=sessions.c.revoked_at.is_(None))
