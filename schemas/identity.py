"""Identity events: sessions and tokens the issuer ended, on `identity-revocations.v1`."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from schemas.envelope import EventPayload

RevocationReason = Literal["signed_out", "user_disabled", "client_disabled", "access_changed",
                           "password_reset", "secret_rotated"]


class SessionsRevoked(EventPayload):
    """Tokens to refuse from now on: every token of session `sid`, and every token issued to
    `subject` (a user id or a police client id) at or before `revoked_before`. Ids and a
    time only: never an e-mail address or a name."""

    event_type = "SessionsRevoked"
    subject: str | None = Field(default=None, max_length=64)
    sid: str | None = Field(default=None, max_length=64)
    revoked_before: AwareDatetime
    reason: RevocationReason

    @model_validator(mode="after")
    def _names_something(self) -> SessionsRevoked:
        if self.subject is None and self.sid is None:
            raise ValueError("a revocation names a subject, a session or both")
        return self


IDENTITY_EVENT_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    (SessionsRevoked.event_type, SessionsRevoked.event_version): SessionsRevoked}
