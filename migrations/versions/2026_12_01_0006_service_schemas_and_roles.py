"""each service its own schema and database role; the shared app role retired

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 07:00:00.000000

Every service's tables move into a schema named after it, and each service gets its own
outbox, outbox bookkeeping and processed-events tables there (rows are moved by their source
or consumer name). Each role `daybreak_<service>` may use only its own schema. The roles are
cluster-wide, so `scripts/infra.sh` (or the deployer) creates them before migrating.

Two grants across schemas remain, each removed by the revision that ends its need: the
notifier still reads the matcher's registry, and the audit service still runs retention on
the notifier's and the matcher's content. The accounts tables stay in `public`, readable by
every role that serves sign-in, until one issuer owns them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.grants import DML, SERVICE_ROLES, app_role, grant, grant_sequences

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

OWN_TABLES = {
    "ingest": ("forces", "incidents"),
    "matcher": ("local_authorities", "schools", "school_calendar_days", "pupils",
                "roster_imports", "match_decisions", "reviews", "matcher_withdrawn_incidents"),
    "notifier": ("notifications", "notification_children", "notifier_withdrawn_incidents",
                 "notifier_emails", "notifier_sign_in_links", "notifier_webhook_deliveries"),
    "audit": ("audit_events", "audit_tree_heads"),
}
APPEND_ONLY = ("audit_events", "audit_tree_heads")
ACCOUNTS = ("api_clients", "users", "auth_failures")
PLUMBING = ("outbox", "outbox_inflight", "processed_events")
# transitional, each revoked by a later revision
CROSS_GRANTS = {
    "notifier": (("matcher.schools", "SELECT"), ("matcher.school_calendar_days", "SELECT"),
                 ("matcher.local_authorities", "SELECT")),
    "audit": (("notifier.notifications", "SELECT, UPDATE"),
              ("notifier.notification_children", "SELECT, DELETE"),
              ("matcher.reviews", "SELECT, UPDATE")),
}


def upgrade() -> None:
    _require_roles()
    for schema, tables in OWN_TABLES.items():
        op.execute(f'CREATE SCHEMA "{schema}"')
        for table in tables:
            op.execute(f'ALTER TABLE public."{table}" SET SCHEMA "{schema}"')
        _create_plumbing(schema)
        _move_plumbing_rows(schema)
    for table in PLUMBING:
        op.execute(f'DROP TABLE public."{table}"')
    _revoke_retired_role()
    for schema, tables in OWN_TABLES.items():
        role = SERVICE_ROLES[schema]
        op.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        for table in tables:
            grant(f"{schema}.{table}", "SELECT, INSERT" if table in APPEND_ONLY else DML,
                  role=role)
        for table in PLUMBING:
            grant(f"{schema}.{table}", role=role)
        grant_sequences(schema, role=role)
        op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        for table in ACCOUNTS:
            grant(table, role=role)
        grant_sequences("public", role=role)
    for service, grants in CROSS_GRANTS.items():
        role = SERVICE_ROLES[service]
        for table, privileges in grants:
            op.execute(f'GRANT USAGE ON SCHEMA "{table.split(".")[0]}" TO "{role}"')
            grant(table, privileges, role=role)


def _require_roles() -> None:
    found = {row[0] for row in op.get_bind().execute(sa.text(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(:names)"),
        {"names": list(SERVICE_ROLES.values())})}
    missing = sorted(set(SERVICE_ROLES.values()) - found)
    if missing:
        raise SystemExit(f"create the database roles {', '.join(missing)} before migrating "
                         "(scripts/infra.sh up does)")


def _create_plumbing(schema: str) -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        schema=schema,
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["source", "id"], schema=schema,
                    postgresql_where=sa.text("published_at IS NULL"))
    op.create_table(
        "outbox_inflight",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("start_offsets", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("outbox_ids", sa.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_outbox_inflight"),
        schema=schema,
    )
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
        schema=schema,
    )


def _move_plumbing_rows(schema: str) -> None:
    # sources and consumers are "<topic prefix><service>"; ids are kept, so a relay's
    # in-flight record still names its rows. `schema` comes from OWN_TABLES, not input.
    own = f"'(^|[.])({schema})$'"
    for statement in (
        f'INSERT INTO "{schema}".outbox SELECT * FROM public.outbox WHERE source ~ {own}',
        f"""SELECT setval(pg_get_serial_sequence('"{schema}".outbox', 'id'),
            GREATEST((SELECT max(id) FROM public.outbox), 1))""",
        f'INSERT INTO "{schema}".outbox_inflight '
        f"SELECT * FROM public.outbox_inflight WHERE source ~ {own}",
        f'INSERT INTO "{schema}".processed_events '
        f"SELECT * FROM public.processed_events WHERE consumer ~ {own}",
    ):
        op.execute(statement)


def _revoke_retired_role() -> None:
    role = app_role()
    op.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"')
    op.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{role}"')
    op.execute(f'REVOKE ALL ON SCHEMA public FROM "{role}"')
    for schema, tables in OWN_TABLES.items():
        for table in tables:
            op.execute(f'REVOKE ALL ON TABLE "{schema}"."{table}" FROM "{role}"')
        op.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "{schema}" FROM "{role}"')


def downgrade() -> None:
    raise NotImplementedError("0006 is not reversible: the services now run as separate roles")
