"""Kafka topic names (v1) and their dead-letter twins."""

from __future__ import annotations

INCIDENTS = "incidents.v1"
MATCHES = "matches.v1"
REVIEWS = "reviews.v1"
NOTIFICATIONS = "notifications.v1"
DISCLOSURES = "disclosures.v1"
REGISTRY = "registry.v1"  # compacted: the latest state of each school, LA and calendar
AUDIT_HEADS = "audit-heads.v1"  # signed tree heads: public metadata, no dead-letter twin
AUDIT_COSIGNATURES = "audit-cosignatures.v1"  # witnesses' cosignatures of those heads, likewise
# the audit log's evidence outside the database: kept for ever (retention.ms = -1)
AUDIT_EVIDENCE: tuple[str, ...] = (AUDIT_HEADS, AUDIT_COSIGNATURES)
# sessions the identity service ended (SessionsRevoked): ids and times only, no dead-letter
# twin; kept as long as the longest-lived token plus a margin (TopicLayout.configs), so a
# service that starts reads every revocation whose tokens could still be presented
REVOCATIONS = "identity-revocations.v1"

ALL_TOPICS: tuple[str, ...] = (INCIDENTS, MATCHES, REVIEWS, NOTIFICATIONS, DISCLOSURES, REGISTRY)
COMPACTED: frozenset[str] = frozenset({REGISTRY})


def dlq(topic: str) -> str:
    """The dead-letter twin of a topic."""
    return f"{topic}.dlq"


def all_topics_with_dlq() -> tuple[str, ...]:
    """Every v1 topic and its dead-letter twin."""
    return ALL_TOPICS + tuple(dlq(t) for t in ALL_TOPICS)
