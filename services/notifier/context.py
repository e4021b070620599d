"""What the notifier's routes reach: the shared adapters, the handlers' deps, the relay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends

from services.common.context import AppContext, context_of
from services.notifier.dispatch import Dispatcher
from services.notifier.handlers import NotifierDeps


def no_relay() -> None:
    """Nothing to wake: an app mounted without its worker (a router under test)."""


@dataclass(kw_only=True)
class NotifierContext(AppContext):
    """The shared adapters plus the consumer's deps, the relay's wake-up and the dispatcher."""

    deps: NotifierDeps
    wake_relay: Callable[[], None] = no_relay
    dispatcher: Dispatcher | None = None  # built by the lifespan, beside its HTTP client
    # the portal's client to the matcher's review API (settings.matcher_url), built on first
    # use and kept for the process; tests give one over an ASGITransport to a matcher app
    matcher_api: httpx.AsyncClient | None = None
    # the auditor pages' client to the audit service's API (settings.audit_url), likewise
    audit_api: httpx.AsyncClient | None = None

    def matcher(self) -> httpx.AsyncClient:
        """The client to the matcher's review API."""
        if self.matcher_api is None:
            self.matcher_api = httpx.AsyncClient(base_url=self.settings.matcher_url,
                                                 timeout=self.settings.matcher_timeout_s)
        return self.matcher_api

    def audit(self) -> httpx.AsyncClient:
        """The client to the audit service's API."""
        if self.audit_api is None:
            self.audit_api = httpx.AsyncClient(base_url=self.settings.audit_url,
                                               timeout=self.settings.matcher_timeout_s)
        return self.audit_api


get_notifier_ctx = context_of(NotifierContext)
NotifierCtx = Annotated[NotifierContext, Depends(get_notifier_ctx)]
