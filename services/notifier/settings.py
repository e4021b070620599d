"""The notifier's settings: the shared ones plus mail, portal links and delivery retries."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import Settings


class NotifierSettings(Settings):
    """Environment-driven configuration (prefix `DAYBREAK_`)."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=10, gt=0)
    mail_from: str = "daybreak@localhost"
    portal_base_url: str = "http://127.0.0.1:8003"
    sign_in_link_ttl_minutes: int = Field(default=12 * 60, ge=5)
    dispatch_interval_s: float = Field(default=1.0, gt=0)
    delivery_max_attempts: int = Field(default=8, ge=1, le=30)
    delivery_backoff_s: float = Field(default=5.0, gt=0)
    webhook_timeout_s: float = Field(default=10, gt=0)
