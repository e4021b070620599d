"""Ingest's settings: the shared ones plus the retries of forces' receipts webhooks."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import Settings


class IngestSettings(Settings):
    """Environment-driven configuration (prefix `DAYBREAK_`)."""

    receipt_delivery_max_attempts: int = Field(default=8, ge=1, le=30)
    receipt_delivery_backoff_s: float = Field(default=5.0, gt=0)
    receipt_delivery_interval_s: float = Field(default=1.0, gt=0)
    receipt_webhook_timeout_s: float = Field(default=10, gt=0)


def ingest_settings(settings: Settings | None) -> IngestSettings:
    """The given settings as ingest's (the shared defaults for ingest's own), else the
    environment's."""
    if isinstance(settings, IngestSettings):
        return settings
    return IngestSettings(**settings.model_dump()) if settings else IngestSettings()
