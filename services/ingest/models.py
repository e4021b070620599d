"""Tables owned by ingest: forces and the incidents they reported (no child data)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.common.db import metadata

forces = Table(
    "forces",
    metadata,
    Column("force_code", String(10), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("disclosure_profile", JSONB, nullable=False, server_default="{}"),
    # where a child with no usable address or school hint goes
    Column("default_la_code", String(8)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema="ingest",
)

incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("force_code", String(10), nullable=False),
    Column("incident_reference", String(64), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("children_count", SmallInteger, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("withdrawn_at", DateTime(timezone=True)),
    # the current version: 1 as reported, one more for each correction (PUT)
    Column("version", SmallInteger, nullable=False, server_default="1"),
    UniqueConstraint("force_code", "incident_reference"),
    schema="ingest",
)

# Every version of every incident, without child data: its body's digest and one per child
# (None for incidents kept before versions were), so a correction tells which children changed
incident_versions = Table(
    "incident_versions",
    metadata,
    Column("incident_id", Uuid, nullable=False),
    Column("version", SmallInteger, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("child_digests", JSONB),
    Column("received_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("incident_id", "version"),
    schema="ingest",
)

# Children withdrawn alone, or dropped from the end by a correction (the reason goes on
# incidents.v1 only: it is the police's own words and may name someone)
child_withdrawals = Table(
    "incident_child_withdrawals",
    metadata,
    Column("incident_id", Uuid, nullable=False),
    Column("child_index", SmallInteger, nullable=False),
    Column("withdrawn_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("incident_id", "child_index"),
    schema="ingest",
)
