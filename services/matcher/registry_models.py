"""What an admin sends to register local authorities and schools."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.incidents import NOT_BLANK
from services.common.problems import Problem
from services.common.webhook_signing import WebhookUrl
from services.matcher.roster import normalise_uk_postcode

LA_CODE_PATTERN = r"^[A-Za-z0-9]{1,8}$"
FORCE_CODE_PATTERN = r"^[A-Za-z]{2,10}$"  # stored upper-case, as reports carry it
ForceCodeIn = Annotated[str, StringConstraints(to_upper=True, pattern=FORCE_CODE_PATTERN)]
URN_PATTERN = r"^[0-9]{6,7}$"
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"  # "HH:MM", London time
MAX_ESCALATION_MINUTES = 24 * 60
MAX_ESCALATION_BEFORE_MINUTES = 12 * 60
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                        pattern=NOT_BLANK)]
Email = Annotated[str, StringConstraints(
    strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s.]+$",
)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LaContactIn(_Body):
    """A person at a local authority: `safeguarding` (children on no roll, and every item
    addressed to the LA; required), `review` (review alerts; without one the safeguarding
    contact gets them), `duty_manager` (called before a deadline when nobody has acted)."""

    role: Literal["safeguarding", "review", "duty_manager"]
    name: Name
    email: Email


class SchoolContactIn(_Body):
    """A person at a school who receives notifications."""

    role: Literal["dsl", "deputy_dsl", "holiday_cover"]
    name: Name
    email: Email


class WebhookIn(_Body):
    """Where a school's system takes notifications, and the HMAC secret that signs them."""

    url: WebhookUrl
    secret: SecretStr | None = Field(default=None, min_length=16, max_length=256)


class LocalAuthorityIn(_Body):
    """`PUT /v1/local-authorities/{la_code}`; an omitted setting keeps the stored value (the
    defaults of services/common/escalation.py for a new LA)."""

    name: Name
    contacts: list[LaContactIn] = Field(default_factory=list, max_length=50)
    escalation_before_minutes: int | None = Field(default=None, ge=1, strict=True,
                                                  le=MAX_ESCALATION_BEFORE_MINUTES)
    attendance_prompt_at: str | None = Field(default=None, pattern=CLOCK_PATTERN)
    attendance_la_at: str | None = Field(default=None, pattern=CLOCK_PATTERN)
    # the police force whose area covers the LA (its reports' children are likeliest at the
    # LA's schools: the matcher's area prior); omitted keeps the stored one
    force_code: ForceCodeIn | None = None


class SchoolIn(_Body):
    """`PUT /v1/schools/{urn}`; GIAS facts (phase, ages) are not set here."""

    name: Name
    la_code: Annotated[str, StringConstraints(to_upper=True, pattern=LA_CODE_PATTERN)]
    postcode: str | None = None
    participates: StrictBool = True
    day_starts_at: str = Field(default="08:45", pattern=CLOCK_PATTERN)
    contacts: list[SchoolContactIn] = Field(default_factory=list, max_length=50)
    webhook: WebhookIn | None = None
    status: Literal["open", "closed"] | None = None
    # minutes after day_starts_at; omitted: keep the stored value (DEFAULT_ESCALATION for a new one)
    deputy_after_minutes: int | None = Field(default=None, ge=1, le=MAX_ESCALATION_MINUTES,
                                             strict=True)
    la_after_minutes: int | None = Field(default=None, ge=1, le=MAX_ESCALATION_MINUTES,
                                         strict=True)

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        return normalise_uk_postcode(value) if value else None

    @model_validator(mode="after")
    def _deputy_first(self) -> SchoolIn:
        deputy, la = self.deputy_after_minutes, self.la_after_minutes
        if deputy is not None and la is not None and deputy > la:
            raise ValueError("deputy_after_minutes must not exceed la_after_minutes")
        return self



def field_problem(field: str, message: str, detail: str | None = None) -> Problem:
    """A 422 naming the one field that is wrong, as pydantic's own refusals do."""
    return Problem(422, "Invalid request body", detail or f"{field} {message}.",
                   extra={"errors": [{"field": field, "message": message}]})
