"""The identity service's settings: the shared ones plus the private signing keys."""

from __future__ import annotations

import ipaddress
import logging
from datetime import timedelta

from pydantic import Field, SecretStr, field_validator, model_validator

from services.common.settings import Settings
from services.identity.accounts import SignInPolicy
from services.identity.keys import Keyset, generate_key
from services.identity.passwords import SignInGate
from services.identity.security_events import trusted_networks
from services.identity.throttle import Budgets

log = logging.getLogger(__name__)


class IdentitySettings(Settings):
    """`DAYBREAK_IDENTITY_SIGNING_KEYS`: a JSON list of Ed25519 keys, the active one first."""

    identity_signing_keys: SecretStr | None = None
    # sign-in throttling, failures counted over DAYBREAK_LOGIN_FAILURE_WINDOW_SECONDS (15 min):
    # DAYBREAK_LOGIN_MAX_FAILURES (5) per login from one address, so a stranger's guesses
    # cannot lock a DSL out from their own address; 20 per address whatever the login, which
    # stops one address spraying many logins; 100 per login from everywhere, a ceiling only
    # a spread-out attack reaches
    login_address_max_failures: int = Field(default=20, ge=1)
    login_account_max_failures: int = Field(default=100, ge=1)
    # argon2 checks at once (each takes a core for ~0.3 s), and sign-ins that may wait for
    # one; beyond that a sign-in is refused at once with 503 instead of queueing
    login_concurrency: int = Field(default=4, ge=1, le=64)
    login_max_waiting: int = Field(default=32, ge=0, le=10_000)
    # who may tell identity the address a sign-in came from (X-Daybreak-Client-Address):
    # the services that relay sign-ins, on loopback by default; anyone else's header is ignored
    identity_trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1/32",
                                                                         "::1/128"])
    # sign-in security events (addresses and user agents are personal data) are kept 180 days
    security_events_retention_days: int = Field(default=180, ge=1)

    @field_validator("identity_trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP address or network") from None
        return value

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

    def sign_in_policy(self) -> SignInPolicy:
        """The gate, failure budgets and trusted relays sign-ins are checked with."""
        return SignInPolicy(
            gate=SignInGate(concurrency=self.login_concurrency,
                            max_waiting=self.login_max_waiting),
            budgets=Budgets(per_pair=self.login_max_failures,
                            per_address=self.login_address_max_failures,
                            per_login=self.login_account_max_failures,
                            window=timedelta(seconds=self.login_failure_window_seconds)),
            trusted_proxies=trusted_networks(self.identity_trusted_proxies))


def identity_settings(settings: Settings | None = None) -> IdentitySettings:
    """Identity settings from the environment, keeping whatever a shared Settings holds."""
    if settings is None or isinstance(settings, IdentitySettings):
        return settings or IdentitySettings()
    return IdentitySettings(**settings.model_dump())
