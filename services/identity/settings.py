"""The identity service's settings: the shared ones plus the private signing keys."""

from __future__ import annotations

import logging

from pydantic import SecretStr, model_validator

from services.common.settings import Settings
from services.identity.keys import Keyset, generate_key

log = logging.getLogger(__name__)


class IdentitySettings(Settings):
    """`DAYBREAK_IDENTITY_SIGNING_KEYS`: a JSON list of Ed25519 keys, the active one first."""

    identity_signing_keys: SecretStr | None = None

    @model_validator(mode="after")
    def _signing_keys_outside_development(self) -> IdentitySettings:
        if self.identity_signing_keys is not None:
            Keyset.from_setting(self.identity_signing_keys.get_secret_value())  # fail fast
            return self
        if self.env != "development":
            raise ValueError("DAYBREAK_IDENTITY_SIGNING_KEYS must be set outside development "
                             "(`daybreak keys rotate` prints a first one)")
        log.warning("no DAYBREAK_IDENTITY_SIGNING_KEYS: signing tokens with an ephemeral key")
        self.identity_signing_keys = SecretStr(f'["{generate_key()}"]')
        return self

    def keyset(self) -> Keyset:
        """The signing keys, active first."""
        assert self.identity_signing_keys is not None  # the validator guarantees it
        return Keyset.from_setting(self.identity_signing_keys.get_secret_value())


def identity_settings(settings: Settings | None = None) -> IdentitySettings:
    """Identity settings from the environment, keeping whatever a shared Settings holds."""
    if settings is None or isinstance(settings, IdentitySettings):
        return settings or IdentitySettings()
    return IdentitySettings(**settings.model_dump())
