"""Settings shared by every service: one validated object, built once in main.py."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from aiokafka.helpers import create_ssl_context
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import AUDIT_EVIDENCE, COMPACTED, DISCLOSURES, REVOCATIONS
from services.common.jwks import parse_jwks
from services.common.pseudonym import ChildKeySecrets

DEV_SECRET = "development-only-secret-change-me-0000000000000000"
_MIN_SECRET_LEN = 32
# Each service owns a PostgreSQL schema of the same name and connects as its own role.
ServiceName = Literal["ingest", "matcher", "notifier", "audit", "identity"]
SERVICES: tuple[ServiceName, ...] = get_args(ServiceName)


class MissingSetting(ValueError):
    """A setting this process needs was not given (message names the variable)."""

HOUR_MS = 60 * 60 * 1000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# a revocation is kept this much longer than the tokens it refuses: clock skew between the
# issuer and the broker, and tokens' `nbf` leeway
REVOCATION_MARGIN_MS = HOUR_MS
SecurityProtocol = Literal["SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256"]
Compression = Literal["none", "lz4", "zstd", "gzip"]


@dataclass(frozen=True)
class KafkaConnection:
    """Where the broker is and who this process is to it, for every aiokafka client."""

    bootstrap: str
    security_protocol: SecurityProtocol = "SASL_PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    compression: Compression = "none"  # what every producer compresses its batches with
    # how long the broker may hold a consumer's fetch for more records, and how many bytes
    # answer it at once (aiokafka's fetch_max_wait_ms, fetch_min_bytes)
    fetch_max_wait_ms: int = 100
    fetch_min_bytes: int = 256 * 1024
    # SASL_SSL: the PEM bundle the brokers' certificates chain to (None: the system's CAs)
    ca_file: str | None = None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient
        (with SASL_SSL, a verifying `ssl_context`: every client is built from these)."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap,
                                   "security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username or "",
                "sasl_plain_password": self.password.get_secret_value() if self.password else "",
            }
        if self.security_protocol == "SASL_SSL":
            options["ssl_context"] = self.ssl_context()
        return options

    def ssl_context(self) -> ssl.SSLContext:
        """TLS 1.2 at least, the broker's chain verified against `ca_file` and its name
        checked against the bootstrap host (aiokafka's `create_ssl_context`)."""
        context: ssl.SSLContext = create_ssl_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def plaintext_hosts(self) -> list[str]:
        """The bootstrap hosts this connection would reach without TLS, loopback aside."""
        if self.security_protocol == "SASL_SSL":
            return []
        return [host for host in bootstrap_hosts(self.bootstrap) if not _is_loopback(host)]

    def producer_options(self) -> dict[str, Any]:
        """`client_options` plus what every producer shares: its batches' compression."""
        compression = None if self.compression == "none" else self.compression
        return self.client_options() | {"compression_type": compression}

    def consumer_options(self) -> dict[str, Any]:
        """`client_options` plus what every consumer shares: how its fetches are batched."""
        return self.client_options() | {"fetch_max_wait_ms": self.fetch_max_wait_ms,
                                        "fetch_min_bytes": self.fetch_min_bytes}

    def as_user(self, username: str, password: str | SecretStr) -> KafkaConnection:
        """The same broker under another principal."""
        secret = password if isinstance(password, SecretStr) else SecretStr(password)
        return replace(self, username=username, password=secret)


def bootstrap_hosts(bootstrap: str) -> list[str]:
    """The host part of each `host:port` in a bootstrap list (IPv6 in brackets or bare)."""
    hosts = []
    for server in filter(None, (s.strip() for s in bootstrap.split(","))):
        if server.startswith("["):
            hosts.append(server[1:].split("]", 1)[0])
        elif server.count(":") > 1:  # a bare IPv6 address, with or without a port
            hosts.append(server)
        else:
            hosts.append(server.rsplit(":", 1)[0] if ":" in server else server)
    return hosts


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True)
class TopicLayout:
    """How topics are created: partitions, copies, and how long records stay on the broker."""

    partitions: int = 6
    replication_factor: int = 1
    min_insync_replicas: int = 1
    retention_ms: int = WEEK_MS
    dlq_retention_ms: int = WEEK_MS
    disclosures_retention_ms: int = 30 * DAY_MS
    # the longest token lifetime plus REVOCATION_MARGIN_MS (Settings.topic_layout)
    revocations_retention_ms: int = 12 * HOUR_MS + HOUR_MS

    def configs(self, topic: str) -> dict[str, str]:
        """The topic-level configs for one topic, set when it is created and again on every
        `kafka_setup apply` (dead-letter twins keep their own retention)."""
        if topic.removesuffix(".dlq").endswith(DISCLOSURES):
            # ids, pseudonymous child keys, no content: kept long enough for the audit
            # consumer to catch up after an outage (the audit log is the record)
            return {"min.insync.replicas": str(self.min_insync_replicas),
                    "retention.ms": str(self.disclosures_retention_ms)}
        if topic.endswith(".dlq"):
            return {"min.insync.replicas": str(self.min_insync_replicas),
                    "retention.ms": str(self.dlq_retention_ms)}
        if any(topic.endswith(base) for base in AUDIT_EVIDENCE):
            # signed heads and their cosignatures: what makes a rewrite visible, kept for ever
            return {"min.insync.replicas": str(self.min_insync_replicas),
                    "retention.ms": "-1", "retention.bytes": "-1"}
        if topic.endswith(REVOCATIONS):
            # ids and times, no content: a revocation must outlive every token it refuses,
            # or a service reading the topic from its start would accept that token again
            return {"min.insync.replicas": str(self.min_insync_replicas),
                    "retention.ms": str(self.revocations_retention_ms)}
        if any(topic.endswith(base) for base in COMPACTED):
            # the registry: each school's, LA's and calendar's latest state, kept for ever
            return {"min.insync.replicas": str(self.min_insync_replicas),
                    "cleanup.policy": "compact", "retention.ms": "-1"}
        return {"min.insync.replicas": str(self.min_insync_replicas),
                "retention.ms": str(self.retention_ms)}


class Settings(BaseSettings):
    """Environment-driven configuration (prefix `DAYBREAK_`)."""

    model_config = SettingsConfigDict(env_prefix="DAYBREAK_", extra="ignore")

    env: Literal["development", "test", "production"] = "production"
    # one URL per service role; a deployment gives each process its own alone
    ingest_database_url: str | None = None
    matcher_database_url: str | None = None
    notifier_database_url: str | None = None
    audit_database_url: str | None = None
    identity_database_url: str | None = None
    migrations_database_url: str | None = None
    db_pool_size: int = Field(default=20, ge=1, le=200)
    # a database on another host is reached over verified TLS (services/common/db.py
    # tls_connect): the CA bundle its certificate chains to (None: the system's CAs), and the
    # loud opt-out for a URL with ssl=disable on a network trusted as a whole
    db_ca_file: str | None = None
    db_insecure_allow_plaintext: bool = False
    # off for a pooler that cannot keep prepared statements across transactions (PgBouncer
    # in transaction mode before 1.21, or without max_prepared_statements): docs/deployment.md
    db_statement_cache: bool = True
    # how long an outbox relay's lease lasts unrenewed (renewed every third of it): how long
    # a source waits for another copy's relay after its leader dies (services/common/lease.py)
    outbox_lease_seconds: float = Field(default=10, ge=1, le=600)
    # the cyclic collector's youngest generation runs every this many net allocations once
    # the service started (services/common/collector.py; 700 is Python's own default)
    gc_young_threshold: int = Field(default=50_000, ge=100, le=10_000_000)
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    # per topic, fixed when `kafka_setup apply` creates it: a group's consumers share the
    # partitions, so 6 lets 1, 2, 3 or 6 copies of a service split the work evenly
    kafka_partitions: int = Field(default=6, ge=1, le=64)
    kafka_request_timeout_ms: int = Field(default=5000, ge=500)
    kafka_security_protocol: SecurityProtocol = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_compression: Compression = "none"  # DAYBREAK_KAFKA_COMPRESSION, every producer's
    # every consumer's fetch is answered once it has this many bytes, or after this wait:
    # fewer, fuller polls (fewer transactions and fetches) for a bounded wait per hop
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=0, le=5000)
    kafka_fetch_min_bytes: int = Field(default=256 * 1024, ge=1, le=16 * 1024 * 1024)
    # the consumers off the way from a report to a school's alert (ingest's receipts, the
    # audit log, the notifier's directory and figures) wait longer: an idle stack's broker
    # answers five times fewer empty fetches of theirs, and a loaded one fills their polls
    kafka_background_fetch_max_wait_ms: int = Field(default=500, ge=0, le=5000)
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    # SASL_SSL: the PEM bundle that signs the brokers' certificates (None: the system's CAs);
    # SASL_PLAINTEXT to a broker that is not on loopback is refused outside development
    # unless the loud opt-out says the network itself is trusted
    kafka_ca_file: str | None = None
    kafka_insecure_allow_plaintext: bool = False
    kafka_replication_factor: int = Field(default=1, ge=1, le=7)
    kafka_min_insync_replicas: int = Field(default=1, ge=1, le=7)
    # incidents carry children's names: records leave the broker after a week, dead letters too;
    # disclosures (no content) stay a month for the audit consumer; none outlives the content
    kafka_retention_ms: int = Field(default=WEEK_MS, ge=60_000)
    kafka_dlq_retention_ms: int = Field(default=WEEK_MS, ge=60_000)
    kafka_disclosures_retention_ms: int = Field(default=30 * DAY_MS, ge=60_000)
    child_key_secret: SecretStr = SecretStr(DEV_SECRET)
    # the child key secrets rotated in since (services/common/pseudonym.py): a JSON object of
    # id to secret, the current one first (`daybreak pseudonym rotate`)
    child_key_secrets: SecretStr | None = None
    client_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    user_token_ttl_seconds: int = Field(default=3600, ge=60, le=12 * 3600)
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=60)
    max_body_bytes: int = 256 * 1024
    max_upload_bytes: int = 256 * 1024 * 1024
    cookie_secure: bool = True
    log_level: str = "INFO"
    # notification and review content (the school keeps its own safeguarding record): each
    # service purges its own daily, DAYBREAK_RETENTION_*
    retention_content_days: int = Field(default=90, ge=1)
    retention_interval_s: float = Field(default=24 * 60 * 60.0, gt=0)
    # how often the matcher looks for a changed roll and rebuilds its index in the background
    roster_check_seconds: float = Field(default=5.0, gt=0)  # DAYBREAK_ROSTER_CHECK_SECONDS
    # webhooks (schools', forces' receipts) to loopback addresses and over plain http to them:
    # for the tests' receivers and a local stack only, never in production
    # (services/common/safe_http.py refuses every other non-public address whatever this says)
    webhook_allow_loopback: bool = False
    # child data sealed per record (services/common/crypto.py): the wrapped data keys and the
    # key-encryption key, both outside the database; given to ingest, matcher, notifier only
    keystore_dir: Path | None = None
    kek_file: Path | None = None
    key_recheck_seconds: float = Field(default=30.0, ge=0)
    # off only for the e2e bench's baseline: events then carry child fields in the clear
    seal_child_data: bool = True
    # the retention owner (the notifier) deletes the data keys of periods past retention
    shred_expired_keys: bool = True

    # --- tokens: minted by the identity service alone, verified everywhere with its public
    # keys (services/common/jwks.py); the identity service's own keys: services/identity
    jwt_issuer: str = "daybreak"
    identity_url: str = "http://127.0.0.1:8005"  # where /v1/token and /v1/sessions are relayed
    identity_timeout_s: float = Field(default=10, gt=0)
    # the matcher's review API: the notifier's portal calls it with the signed-in person's own
    # token, so the matcher authorises and audits every read itself
    matcher_url: str = "http://127.0.0.1:8002"
    matcher_timeout_s: float = Field(default=10, gt=0)
    # the audit service's API, which the portal's auditor pages call with the auditor's token
    audit_url: str = "http://127.0.0.1:8004"
    # where the matcher's readiness asks ingest for the forces' part (with the admin's token)
    ingest_url: str = "http://127.0.0.1:8001"
    jwks_url: str = "http://127.0.0.1:8005/.well-known/jwks.json"
    jwks: str | None = None  # a static JWKS document instead of the URL (tests, air-gapped)
    jwks_cache_seconds: float = Field(default=300, ge=0)
    jwks_refetch_seconds: float = Field(default=10, ge=0)  # at most one fetch per unknown kid
    # the AES-GCM key that seals TOTP secrets in identity.users: a file, never the database
    # (services/identity/totp_vault.py; `daybreak keys totp-init` creates it, mode 0600)
    identity_totp_key_file: str | None = None
    # `GET /metrics` answers only `Authorization: Bearer <this>` (401 otherwise, and always
    # when unset); its gauges are recomputed at most once per `metrics_cache_seconds`
    metrics_token: SecretStr | None = None
    metrics_cache_seconds: float = Field(default=15, ge=0)
    # how long a token waits, after a process starts, for the revocations topic to be read to
    # its end (services/common/revocations.py) before it is answered 503
    revocations_wait_seconds: float = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _static_jwks_parses(self) -> Settings:
        if self.jwks is not None:
            try:
                if not parse_jwks(self.jwks):
                    raise ValueError("no Ed25519 signing key in it")
            except ValueError as exc:
                raise ValueError(f"DAYBREAK_JWKS is not a usable JWKS: {exc}") from None
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        keys = self.child_keys()  # fails fast on a malformed DAYBREAK_CHILD_KEY_SECRETS
        if self.env == "development":
            return self
        for name, values in (("child_key_secret", [keys.original]),
                             ("child_key_secrets", list(keys.rotated.values()))):
            if any(value == DEV_SECRET or len(value) < _MIN_SECRET_LEN for value in values):
                raise ValueError(
                    f"DAYBREAK_{name.upper()} must be set to random values of at least "
                    f"{_MIN_SECRET_LEN} characters outside development"
                )
        if self.kafka_security_protocol == "PLAINTEXT":
            raise ValueError("DAYBREAK_KAFKA_SECURITY_PROTOCOL=PLAINTEXT is for development only")
        if not self.kafka_username or not self.kafka_password:
            raise ValueError("DAYBREAK_KAFKA_USERNAME and DAYBREAK_KAFKA_PASSWORD must be set "
                             "outside development")
        if (hosts := self.kafka().plaintext_hosts()) and not self.kafka_insecure_allow_plaintext:
            raise ValueError(
                f"DAYBREAK_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} to "
                f"{', '.join(hosts)}: a broker on another host is reached over TLS only (set "
                "SASL_SSL and DAYBREAK_KAFKA_CA_FILE; DAYBREAK_KAFKA_INSECURE_ALLOW_PLAINTEXT"
                "=true only where the network itself is trusted)")
        return self

    @model_validator(mode="after")
    def _kafka_ca_file_loads(self) -> Settings:
        # at start-up, not at the first connection a worker retries for ever
        if self.kafka_security_protocol == "SASL_SSL":
            try:
                self.kafka().ssl_context()
            except (OSError, ssl.SSLError) as exc:
                raise ValueError("DAYBREAK_KAFKA_CA_FILE cannot be read as a PEM bundle of CA "
                                 f"certificates ({type(exc).__name__})") from None
        return self

    def child_keys(self) -> ChildKeySecrets:
        """Every secret child keys are made with, the current one first."""
        rotated = self.child_key_secrets
        return ChildKeySecrets.from_setting(self.child_key_secret.get_secret_value(),
                                            rotated.get_secret_value() if rotated else None)

    def database_url_for(self, service: ServiceName) -> str:
        """The URL of `service`'s own database role; fails fast when it is not set."""
        url: str | None = getattr(self, f"{service}_database_url")
        if not url:
            raise MissingSetting(f"DAYBREAK_{service.upper()}_DATABASE_URL is not set")
        return url

    @model_validator(mode="after")
    def _no_loopback_webhooks_in_production(self) -> Settings:
        if self.env == "production" and self.webhook_allow_loopback:
            raise ValueError("DAYBREAK_WEBHOOK_ALLOW_LOOPBACK is for tests and a local stack, "
                             "not production")
        return self

    @model_validator(mode="after")
    def _check_topic_copies(self) -> Settings:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError("DAYBREAK_KAFKA_MIN_INSYNC_REPLICAS cannot exceed "
                             "DAYBREAK_KAFKA_REPLICATION_FACTOR")
        return self

    @model_validator(mode="after")
    def _topics_keep_no_longer_than_content(self) -> Settings:
        for name in ("kafka_retention_ms", "kafka_dlq_retention_ms",
                     "kafka_disclosures_retention_ms"):
            if getattr(self, name) > self.retention_content_days * DAY_MS:
                raise ValueError(f"DAYBREAK_{name.upper()} cannot exceed "
                                 "DAYBREAK_RETENTION_CONTENT_DAYS: records would outlive the "
                                 "content they carry")
        return self

    def kafka(self, *, background: bool = False) -> KafkaConnection:
        """This process's broker connection: bootstrap servers and its own principal
        (`background`: for a consumer off the alert path, its longer fetch wait)."""
        return KafkaConnection(
            bootstrap=self.kafka_bootstrap, security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism, username=self.kafka_username,
            password=self.kafka_password, compression=self.kafka_compression,
            fetch_max_wait_ms=self.kafka_background_fetch_max_wait_ms if background
            else self.kafka_fetch_max_wait_ms,
            fetch_min_bytes=self.kafka_fetch_min_bytes, ca_file=self.kafka_ca_file)

    def topic_layout(self) -> TopicLayout:
        """How this deployment creates its topics."""
        return TopicLayout(
            partitions=self.kafka_partitions, replication_factor=self.kafka_replication_factor,
            min_insync_replicas=self.kafka_min_insync_replicas,
            retention_ms=self.kafka_retention_ms, dlq_retention_ms=self.kafka_dlq_retention_ms,
            disclosures_retention_ms=self.kafka_disclosures_retention_ms,
            revocations_retention_ms=self.longest_token_ttl_ms() + REVOCATION_MARGIN_MS)

    def longest_token_ttl_ms(self) -> int:
        """How long the longest-lived token this deployment issues stays valid."""
        return max(self.user_token_ttl_seconds, self.client_token_ttl_seconds) * 1000

    def topic(self, base: str) -> str:
        """The concrete topic name for a base topic under this deployment's prefix."""
        return f"{self.topic_prefix}{base}"
