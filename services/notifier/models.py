"""Tables owned by the notifier: notifications, their children, outgoing e-mails and webhooks."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.common.db import metadata

notifications = Table(
    "notifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("incident_id", Uuid, nullable=False),  # uq (incident_id, recipient_key) indexes it
    # "school:<urn>" or "la:<code>": one notification per (incident, recipient)
    Column("recipient_key", String(32), nullable=False),
    Column("school_urn", String(7), index=True),
    Column("la_code", String(8), index=True),
    Column("recipient_role", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("incident", JSONB, nullable=False),
    Column("push_at", DateTime(timezone=True), nullable=False),
    Column("deputy_at", DateTime(timezone=True)),
    Column("la_at", DateTime(timezone=True)),
    Column("escalations_sent", SmallInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("viewed_at", DateTime(timezone=True)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", String(64)),
    Column("action_taken", Text),
    Column("closed_at", DateTime(timezone=True)),
    Column("email_id", Uuid),
    # the safety net: when the current owner must have acted, when the LA took over (an
    # escalation or a delivery that failed for good), when its duty manager is next called
    Column("deadline_at", DateTime(timezone=True)),
    Column("la_since", DateTime(timezone=True)),
    Column("duty_at", DateTime(timezone=True)),
    Column("duty_calls", SmallInteger, nullable=False, server_default="0"),
    # attendance follow-up: prompt the DSL, then tell the LA (stage 0 → 1 → 2)
    Column("attendance_prompt_at", DateTime(timezone=True)),
    Column("attendance_la_at", DateTime(timezone=True)),
    Column("attendance_stage", SmallInteger, nullable=False, server_default="0"),
    # the version of the police report shown (never goes back), and what police changed after
    # the recipient had read it: [{"version", "at", "fields"}], field names only
    Column("incident_version", SmallInteger, nullable=False, server_default="1"),
    Column("changes", JSONB, nullable=False, server_default="[]"),
    UniqueConstraint("incident_id", "recipient_key"),
    schema="notifier",
)
Index("ix_notifications_due", notifications.c.push_at,
      postgresql_where=text("state = 'scheduled'"))
Index("ix_notifications_duty", notifications.c.duty_at,
      postgresql_where=text("acknowledged_at IS NULL AND duty_at IS NOT NULL"))
Index("ix_notifications_attendance", notifications.c.attendance_prompt_at,
      postgresql_where=text("attendance_stage < 2 AND attendance_prompt_at IS NOT NULL"))
# the sweeps' other questions, each a partial index so that a pass reads the rows it may
# take, not the whole table (migration 0029): a DSL's notification whose attendance times are
# not yet planned; one whose hand-over to the LA is due; one pushed and not yet acknowledged
# (the dispatcher's escalations, beside ix_notifications_due's first pushes)
Index("ix_notifications_attendance_unplanned",
      func.coalesce(notifications.c.sent_at, notifications.c.push_at),
      postgresql_where=text("attendance_stage = 0 AND attendance_prompt_at IS NULL "
                            "AND school_urn IS NOT NULL AND recipient_role = 'dsl'"))
Index("ix_notifications_attendance_la", notifications.c.attendance_la_at,
      postgresql_where=text("attendance_stage < 2 AND attendance_la_at IS NOT NULL"))
Index("ix_notifications_awaiting", notifications.c.push_at,
      postgresql_where=text("state IN ('sent', 'viewed', 'escalated')"))

notification_children = Table(
    "notification_children",
    metadata,
    Column("notification_id", Uuid, ForeignKey("notifier.notifications.id", ondelete="CASCADE"),
           nullable=False),
    Column("child_id", Uuid, nullable=False),
    Column("child_key", String(64), nullable=False),
    Column("child", JSONB, nullable=False),
    Column("unmatched_reason", String(32)),
    Column("attended", Boolean),
    Column("attendance_at", DateTime(timezone=True)),
    Column("attendance_by", String(64)),
    # the school a child reached the LA through (not participating, closed, not ready)
    Column("via_school_urn", String(7)),
    Column("via_school_name", String(200)),
    Column("version", SmallInteger, nullable=False, server_default="1"),
    PrimaryKeyConstraint("notification_id", "child_id"),
    schema="notifier",
)

notifier_withdrawn_incidents = Table(
    "notifier_withdrawn_incidents",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("withdrawn_at", DateTime(timezone=True), nullable=False),
    schema="notifier",
)

# The newest version of each corrected or withdrawn child the notifier applied: an older
# decision arriving late (matches.v1 and incidents.v1 are not ordered) changes nothing
child_versions = Table(
    "notifier_child_versions",
    metadata,
    Column("child_id", Uuid, primary_key=True),
    Column("incident_id", Uuid, nullable=False),
    Column("version", SmallInteger, nullable=False),
    Column("withdrawn_at", DateTime(timezone=True)),
    schema="notifier",
)

emails = Table(
    "notifier_emails",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("to_addrs", JSONB, nullable=False),
    Column("school_urn", String(7)),
    Column("la_code", String(8)),
    Column("subject_name", String(200), nullable=False),
    Column("count", SmallInteger, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("last_error", String(200)),
    Column("notification_ids", JSONB, nullable=False, server_default="[]"),
    # a mail that failed for good is handed on to the next person once
    Column("handed_on_at", DateTime(timezone=True)),
    schema="notifier",
)
Index("ix_notifier_emails_pending", emails.c.next_attempt_at,
      postgresql_where=text("status = 'pending'"))

sign_in_links = Table(
    "notifier_sign_in_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("email_id", Uuid, nullable=False),
    Column("school_urn", String(7)),
    Column("la_code", String(8)),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    schema="notifier",
)

webhook_deliveries = Table(
    "notifier_webhook_deliveries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("school_urn", String(7), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("last_error", String(200)),
    schema="notifier",
)
Index("ix_notifier_webhook_deliveries_pending", webhook_deliveries.c.next_attempt_at,
      postgresql_where=text("status = 'pending'"))

# The notifier's own copy of the registry, kept from registry.v1 by services/notifier/
# directory.py and rebuilt from that compacted topic alone (the matcher owns the registry).
schools = Table(
    "schools",
    metadata,
    Column("urn", String(7), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("la_code", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("participates", Boolean, nullable=False),
    Column("day_starts_at", Time, nullable=False),
    Column("contacts", JSONB, nullable=False),
    Column("webhook", JSONB),
    Column("deputy_after_minutes", SmallInteger, nullable=False),
    Column("la_after_minutes", SmallInteger, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    schema="notifier",
)

school_calendar_days = Table(
    "school_calendar_days",
    metadata,
    Column("urn", String(7), nullable=False),
    Column("day", Date, nullable=False),
    Column("kind", String(6), nullable=False),
    PrimaryKeyConstraint("urn", "day"),
    schema="notifier",
)

local_authorities = Table(
    "local_authorities",
    metadata,
    Column("la_code", String(8), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("contacts", JSONB, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("escalation_before_minutes", SmallInteger, nullable=False, server_default="30"),
    Column("attendance_prompt_at", Time, nullable=False, server_default="10:00"),
    Column("attendance_la_at", Time, nullable=False, server_default="12:00"),
    schema="notifier",
)

# The LA's open reviews as the notifier chases them (no child data: the matcher holds it):
# the review contact is alerted at once, the duty manager before the deadline, then hourly.
review_alerts = Table(
    "review_alerts",
    metadata,
    Column("review_id", Uuid, primary_key=True),
    Column("child_id", Uuid, nullable=False, unique=True),
    Column("incident_id", Uuid, nullable=False),
    Column("la_code", String(8), nullable=False),
    Column("deadline_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("alert_at", DateTime(timezone=True), nullable=False),
    Column("alerted_at", DateTime(timezone=True)),
    Column("duty_at", DateTime(timezone=True), nullable=False),
    Column("duty_calls", SmallInteger, nullable=False, server_default="0"),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution", String(32)),
    schema="notifier",
)
Index("ix_review_alerts_open", review_alerts.c.duty_at,
      postgresql_where=text("resolved_at IS NULL"))
