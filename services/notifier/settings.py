"""The notifier's settings: the shared ones plus mail, portal links and delivery retries."""

from __future__ import annotations

from typing import Final

from pydantic import Field, model_validator

from services.common.settings import Settings

# the last in every chain: mail nobody else can take (a development mailbox by default)
SERVICE_DESK_EMAIL: Final = "service-desk@localhost"


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
    service_desk_email: str = Field(default=SERVICE_DESK_EMAIL, min_length=3, max_length=320,
                                    pattern=r"^[^@\s]+@[^@\s]+$")

    @model_validator(mode="after")
    def _real_service_desk_in_production(self) -> NotifierSettings:
        # a mailbox nobody reads would end every chain in silence
        if self.env == "production" and self.service_desk_email == SERVICE_DESK_EMAIL:
            raise ValueError("DAYBREAK_SERVICE_DESK_EMAIL must be set in production")
        return self
