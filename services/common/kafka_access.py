"""Who may do what on the broker: each service's principal, topics, group and transactional ids.

The one home of the ACL matrix: the services' `main.py` build their consumers and producers
from it, and `services.common.kafka_setup` grants exactly it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from schemas import topics

ADMIN = "admin"  # super user: topic and ACL setup, tests and operator CLIs only
BROKER = "broker"  # super user: the broker itself (inter-broker and controller listeners)


class Resource(IntEnum):
    """Kafka's ACL resource types (wire values)."""

    TOPIC = 2
    GROUP = 3
    TRANSACTIONAL_ID = 5


class Pattern(IntEnum):
    """Kafka's ACL pattern types (wire values)."""

    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    """Kafka's ACL operations (wire values); READ and WRITE imply DESCRIBE."""

    READ = 3
    WRITE = 4
    DESCRIBE = 8


@dataclass(frozen=True)
class Grant:
    """One ALLOW ACL: `User:principal` may `operation` the resource, from any host."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation


@dataclass(frozen=True)
class ServiceAccess:
    """What one service does on the broker, as base topic names (before the topic prefix)."""

    name: str
    consumes: tuple[str, ...] = ()  # in its consumer group; failures go to each `.dlq` twin
    produces: tuple[str, ...] = ()
    outbox: bool = False  # its relay re-reads what it produced after a crash mid-batch
    transactional: bool = False
    group: str = ""  # a second consumer group of the same principal: `daybreak-<name>-<group>`
    reads: tuple[str, ...] = ()  # read from start to end without a group (no DLQ, no offsets)
    # its group is a hop between a police report and a school's alert: its fetches wait
    # DAYBREAK_KAFKA_FETCH_MAX_WAIT_MS, any other's DAYBREAK_KAFKA_BACKGROUND_FETCH_MAX_WAIT_MS
    alert_path: bool = False

    def group_id(self, prefix: str) -> str:
        """The service's consumer group under the deployment's prefix."""
        return f"{prefix}daybreak-{self.name}" + (f"-{self.group}" if self.group else "")

    def transactional_id(self, prefix: str, instance: str) -> str:
        """A transactional id for one producer instance of the service."""
        return f"{self.transactional_id_prefix(prefix)}{instance}"

    def transactional_id_prefix(self, prefix: str) -> str:
        """What every transactional id of the service starts with."""
        return f"{prefix}daybreak-{self.name}-"

    def grants(self, prefix: str) -> list[Grant]:
        """The ACLs this service needs under the deployment's topic prefix, and no more."""
        out: list[Grant] = []

        def allow(resource: Resource, name: str, operation: Operation,
                  pattern: Pattern = Pattern.LITERAL) -> None:
            out.append(Grant(self.name, resource, name, pattern, operation))

        for base in self.consumes:
            allow(Resource.TOPIC, prefix + base, Operation.READ)
            # dead letters, and the dead-letter depth metric's offsets (WRITE implies DESCRIBE)
            allow(Resource.TOPIC, prefix + topics.dlq(base), Operation.WRITE)
        if self.consumes:
            # READ on the group also covers DESCRIBE, which the consumer-lag metric needs
            allow(Resource.GROUP, self.group_id(prefix), Operation.READ)
        for base in self.reads:
            allow(Resource.TOPIC, prefix + base, Operation.READ)
        for base in self.produces:
            allow(Resource.TOPIC, prefix + base, Operation.WRITE)
            if self.outbox:
                allow(Resource.TOPIC, prefix + base, Operation.READ)
        if self.transactional:
            # one id per process; a restarted process fences its own old id, never another's
            allow(Resource.TRANSACTIONAL_ID, self.transactional_id_prefix(prefix),
                  Operation.WRITE, Pattern.PREFIXED)
        return out


# notifications.v1: the lifecycle events ingest projects into the police's receipts
# every service that verifies tokens reads identity-revocations.v1 whole, from its start, in
# each process and without a group (services/common/revocations.py): a group would share the
# partitions among a service's processes, and each process must refuse every revoked token
REVOKED = (topics.REVOCATIONS,)
INGEST = ServiceAccess("ingest", consumes=(topics.NOTIFICATIONS,), produces=(topics.INCIDENTS,),
                       transactional=True, reads=REVOKED)
MATCHER = ServiceAccess("matcher", consumes=(topics.INCIDENTS,),
                        produces=(topics.MATCHES, topics.REVIEWS, topics.DISCLOSURES,
                                  topics.REGISTRY), outbox=True, reads=REVOKED, alert_path=True)
# incidents.v1 too: a withdrawal retracts the notifications it caused; reviews.v1: the LA is
# told of each review waiting and chased until it is resolved
NOTIFIER = ServiceAccess("notifier",
                         consumes=(topics.MATCHES, topics.INCIDENTS, topics.REVIEWS),
                         produces=(topics.DISCLOSURES, topics.NOTIFICATIONS), outbox=True,
                         reads=REVOKED, alert_path=True)
# the notifier's copy of the registry, in a group of its own: a match waiting for a school's
# entry must not hold that entry up behind it
NOTIFIER_REGISTRY = ServiceAccess("notifier", consumes=(topics.REGISTRY,), group="registry")
# the partnership's figures: a read model of the notifier's own lifecycle events, in a group of
# its own so that it can be rebuilt (or fall behind) without touching the casework
NOTIFIER_FIGURES = ServiceAccess("notifier", consumes=(topics.NOTIFICATIONS,), group="figures")
# verification reads the witnesses' cosignatures back
AUDIT = ServiceAccess("audit", consumes=(topics.DISCLOSURES,), produces=(topics.AUDIT_HEADS,),
                      reads=(topics.AUDIT_COSIGNATURES, *REVOKED))
# the audit log's independent witness: reads the signed heads, writes only its cosignatures
WITNESS = ServiceAccess("witness", reads=(topics.AUDIT_HEADS,),
                        produces=(topics.AUDIT_COSIGNATURES,))
# the token issuer announces the sessions it ends through its outbox (and checks its own
# table, not the topic, for its own routes)
IDENTITY = ServiceAccess("identity", produces=REVOKED, outbox=True)
SERVICES: tuple[ServiceAccess, ...] = (INGEST, MATCHER, NOTIFIER, NOTIFIER_REGISTRY, AUDIT,
                                       IDENTITY, NOTIFIER_FIGURES, WITNESS)


def all_grants(prefix: str) -> list[Grant]:
    """Every service's ACLs under one topic prefix."""
    return [grant for service in SERVICES for grant in service.grants(prefix)]
