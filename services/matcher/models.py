"""Tables owned by the matcher: the registry (LAs, schools, rolls) and its decisions."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.common.db import metadata
from services.common.escalation import DEPUTY_AFTER_MINUTES, LA_AFTER_MINUTES

local_authorities = Table(
    "local_authorities",
    metadata,
    Column("la_code", String(8), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("contacts", JSONB, nullable=False, server_default="[]"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # minutes before a deadline the LA's duty manager is called; attendance follow-up times
    Column("escalation_before_minutes", SmallInteger, nullable=False, server_default="30"),
    Column("attendance_prompt_at", Time, nullable=False, server_default="10:00"),
    Column("attendance_la_at", Time, nullable=False, server_default="12:00"),
    # the police force whose area covers the LA: its reports' children are likeliest here
    Column("force_code", String(10)),
    schema="matcher",
)

schools = Table(
    "schools",
    metadata,
    Column("urn", String(7), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("la_code", String(8), nullable=False, index=True),
    Column("postcode", String(10)),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("phase", String(64)),
    Column("low_age", SmallInteger),
    Column("high_age", SmallInteger),
    Column("participates", Boolean, nullable=False, server_default="true"),
    Column("day_starts_at", Time, nullable=False, server_default="08:45"),
    Column("contacts", JSONB, nullable=False, server_default="[]"),
    Column("webhook", JSONB),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # unacknowledged this long after day_starts_at: the deputy DSL, then the LA, are told
    Column("deputy_after_minutes", SmallInteger, nullable=False,
           server_default=str(DEPUTY_AFTER_MINUTES)),
    Column("la_after_minutes", SmallInteger, nullable=False,
           server_default=str(LA_AFTER_MINUTES)),
    schema="matcher",
)

# Days that differ from the default (Monday to Friday less bank holidays), per school: its
# own term dates ('term', from its .ics) and the overrides of the calendar CSV ('override').
# Its effective calendar: services/common/school_calendar.effective_days.
school_calendar_days = Table(
    "school_calendar_days",
    metadata,
    Column("urn", String(7), nullable=False),
    Column("day", Date, nullable=False),
    Column("kind", String(6), nullable=False),
    Column("source", String(8), nullable=False, server_default="override"),
    CheckConstraint("kind IN ('closed', 'open')", name="kind"),
    CheckConstraint("source IN ('term', 'override')", name="source"),
    PrimaryKeyConstraint("urn", "source", "day"),
    schema="matcher",
)

# An LA's term dates: the calendar of each of its schools that has none of its own.
la_calendar_days = Table(
    "la_calendar_days",
    metadata,
    Column("la_code", String(8), nullable=False),
    Column("day", Date, nullable=False),
    Column("kind", String(6), nullable=False),
    CheckConstraint("kind IN ('closed', 'open')", name="kind"),
    PrimaryKeyConstraint("la_code", "day"),
    schema="matcher",
)

# A roll row's child data (UPN, names, birth date, gender, address, postcode) is sealed
# whole in `child` under the roll's key (services/matcher/roll.py); its clear columns are
# empty (NULL or '') then, and hold the values only in rows stored before sealing (until
# `daybreak reseal`) or with DAYBREAK_SEAL_CHILD_DATA off. `upn_hash` is the UPN's keyed
# hash, what SQL looks a UPN up by.
pupils = Table(
    "pupils",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("urn", String(7), nullable=False),
    Column("upn", String(13), nullable=False, server_default=""),
    Column("given_name", String(100)),
    Column("preferred_name", String(100), nullable=False, server_default=""),
    Column("family_name", String(100)),
    Column("former_family_name", String(100), nullable=False, server_default=""),
    Column("date_of_birth", Date),
    Column("gender", String(1), nullable=False, server_default=""),
    Column("address_line1", String(200), nullable=False, server_default=""),
    Column("postcode", String(10), nullable=False, server_default=""),
    Column("enrolment_status", String(1), nullable=False),
    Column("on_roll_from", Date),
    Column("on_roll_to", Date),
    Column("child", Text),
    Column("upn_hash", String(64)),
    schema="matcher",
)
Index("ix_pupils_urn", pupils.c.urn)
Index("ix_pupils_upn_hash", pupils.c.upn_hash)
Index("ix_pupils_upn_clear", pupils.c.upn, postgresql_where=pupils.c.upn != "")

roster_imports = Table(
    "roster_imports",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("urn", String(7), nullable=False, index=True),
    Column("rows", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("imported_by", String(64), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema="matcher",
)

match_decisions = Table(
    "match_decisions",
    metadata,
    Column("incident_id", Uuid, nullable=False),
    Column("child_index", SmallInteger, nullable=False),
    Column("child_id", Uuid, nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("urns", JSONB, nullable=False, server_default="[]"),
    Column("score", Float),
    Column("reason", String(64), nullable=False, server_default=""),
    Column("agreements", JSONB, nullable=False, server_default="{}"),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    # the version of the report decided: a correction re-decides only the children it changed
    Column("version", SmallInteger, nullable=False, server_default="1"),
    PrimaryKeyConstraint("incident_id", "child_index"),
    schema="matcher",
)

reviews = Table(
    "reviews",
    metadata,
    Column("review_id", Uuid, primary_key=True),
    Column("incident_id", Uuid, nullable=False, index=True),
    Column("child_index", SmallInteger, nullable=False),
    Column("child_id", Uuid, nullable=False),
    Column("la_code", String(8), index=True),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("child", JSONB, nullable=False),
    Column("incident", JSONB, nullable=False),
    Column("candidates", JSONB, nullable=False),
    Column("reason", String(64), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", String(64)),
    Column("resolution", JSONB),
    # the earliest school-day start among the candidate schools
    Column("deadline_at", DateTime(timezone=True)),
    # a cross-LA handover waiting for the other LA to accept it
    Column("handover_to", String(8)),
    Column("handover_by", String(64)),
    Column("handover_at", DateTime(timezone=True)),
    # one review per child and version of the report: a correction supersedes the open one
    Column("version", SmallInteger, nullable=False, server_default="1"),
    UniqueConstraint("child_id", "version"),
    schema="matcher",
)

withdrawn_incidents = Table(
    "matcher_withdrawn_incidents",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("withdrawn_at", DateTime(timezone=True), nullable=False),
    schema="matcher",
)
