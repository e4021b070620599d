"""What the notifier's routes reach: the shared adapters, the handlers' deps, the relay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

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


get_notifier_ctx = context_of(NotifierContext)
NotifierCtx = Annotated[NotifierContext, Depends(get_notifier_ctx)]
