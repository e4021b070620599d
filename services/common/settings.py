"""Settings shared by every service: one validated object, built once in main.py."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.jwks import parse_jwks

DEV_SECRET = "development-only-secret-change-me-0000000000000000"
_MIN_SECRET_LEN = 32
# Each service owns a PostgreSQL schema of the same name and connects as its own role.
ServiceName = Literal["ingest", "matcher", "notifier", "audit", "identity"]
SERVICES: tuple[ServiceName, ...] = get_args(ServiceName)


class MissingSetting(ValueError):
    """A setting this process needs was not given (message names the variable)."""


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
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    kafka_partitions: int = Field(default=3, ge=1, le=64)
    kafka_request_timeout_ms: int = Field(default=5000, ge=500)
    child_key_secret: SecretStr = SecretStr(DEV_SECRET)
    client_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    user_token_ttl_seconds: int = Field(default=3600, ge=60, le=12 * 3600)
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=60)
    max_body_bytes: int = 256 * 1024
    max_upload_bytes: int = 256 * 1024 * 1024
    cookie_secure: bool = True
    log_level: str = "INFO"

    # --- tokens: minted by the identity service alone, verified everywhere with its public
    # keys (services/common/jwks.py); the identity service's own keys: services/identity
    jwt_issuer: str = "daybreak"
    identity_url: str = "http://127.0.0.1:8005"  # where /v1/token and /v1/sessions are relayed
    identity_timeout_s: float = Field(default=10, gt=0)
    jwks_url: str = "http://127.0.0.1:8005/.well-known/jwks.json"
    jwks: str | None = None  # a static JWKS document instead of the URL (tests, air-gapped)
    jwks_cache_seconds: float = Field(default=300, ge=0)
    jwks_refetch_seconds: float = Field(default=10, ge=0)  # at most one fetch per unknown kid

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
        if self.env == "development":
            return self
        for name in ("child_key_secret",):
            value = getattr(self, name).get_secret_value()
            if value == DEV_SECRET or len(value) < _MIN_SECRET_LEN:
                raise ValueError(
                    f"DAYBREAK_{name.upper()} must be set to a random value of at least "
                    f"{_MIN_SECRET_LEN} characters outside development"
                )
        return self

    def database_url_for(self, service: ServiceName) -> str:
        """The URL of `service`'s own database role; fails fast when it is not set."""
        url: str | None = getattr(self, f"{service}_database_url")
        if not url:
            raise MissingSetting(f"DAYBREAK_{service.upper()}_DATABASE_URL is not set")
        return url

    def topic(self, base: str) -> str:
        """The concrete topic name for a base topic under this deployment's prefix."""
        return f"{self.topic_prefix}{base}"
