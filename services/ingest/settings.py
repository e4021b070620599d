"""Ingest's settings: the shared ones plus the retries of forces' receipts webhooks and the
group commit of new reports."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import Settings


class IngestSettings(Settings):
    """Environment-driven configuration (prefix `DAYBREAK_`)."""

    receipt_delivery_max_attempts: int = Field(default=8, ge=1, le=30)
    receipt_delivery_backoff_s: float = Field(default=5.0, gt=0)
    receipt_delivery_interval_s: float = Field(default=1.0, gt=0)
    receipt_webhook_timeout_s: float = Field(default=10, gt=0)
    # group commit of new reports (services/ingest/batcher.py): at most this many per batch,
    # waiting this long for more when a batch is not full, this many batches at a time
    ingest_batch_max: int = Field(default=200, ge=1, le=500)
    ingest_batch_linger_ms: float = Field(default=1.0, ge=0, le=1000)
    ingest_batch_in_flight: int = Field(default=2, ge=1, le=8)


def ingest_settings(settings: Settings | None) -> IngestSettings:
    """The given settings as ingest's (the shared defaults for ingest's own), else the
    environment's."""
    if isinstance(settings, IngestSettings):
        return settings
    return IngestSettings(**settings.model_dump()) if settings else IngestSettings()
