"""What an admin sends to register local authorities and schools."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from services.matcher.roster import normalise_uk_postcode

LA_CODE_PATTERN = r"^[A-Za-z0-9]{1,8}$"
URN_PATTERN = r"^[0-9]{6,7}$"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[str, StringConstraints(
    strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s.]+$",
)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LaContactIn(_Body):
    """A person at a local authority."""

    role: Literal["safeguarding", "review"]
    name: Name
    email: Email


class SchoolContactIn(_Body):
    """A person at a school who receives notifications."""

    role: Literal["dsl", "deputy_dsl", "holiday_cover"]
    name: Name
    email: Email


class WebhookIn(_Body):
    """Where a school's system takes notifications, and the HMAC secret that signs them."""

    url: str = Field(max_length=2000)
    secret: SecretStr | None = Field(default=None, min_length=16, max_length=256)

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        parts = urlsplit(url)
        loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
        if not (parts.scheme == "https" or loopback) or not parts.hostname:
            raise ValueError("must be an https URL")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        return url


class LocalAuthorityIn(_Body):
    """`PUT /v1/local-authorities/{la_code}`."""

    name: Name
    contacts: list[LaContactIn] = Field(default_factory=list, max_length=50)


class SchoolIn(_Body):
    """`PUT /v1/schools/{urn}`; GIAS facts (phase, ages) are not set here."""

    name: Name
    la_code: Annotated[str, StringConstraints(to_upper=True, pattern=LA_CODE_PATTERN)]
    postcode: str | None = None
    participates: bool = True
    day_starts_at: str = Field(default="08:45", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    contacts: list[SchoolContactIn] = Field(default_factory=list, max_length=50)
    webhook: WebhookIn | None = None
    status: Literal["open", "closed"] | None = None

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        return normalise_uk_postcode(value) if value else None

