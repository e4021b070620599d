"""What the matcher's routes reach: the shared adapters, the handlers' deps, the relay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.common.context import AppContext, context_of
from services.matcher.handlers import MatcherDeps


@dataclass(kw_only=True)
class MatcherContext(AppContext):
    """The shared adapters plus the consumer's deps and a way to wake the outbox relay."""

    deps: MatcherDeps
    wake_relay: Callable[[], None]


get_matcher_ctx = context_of(MatcherContext)
MatcherCtx = Annotated[MatcherContext, Depends(get_matcher_ctx)]
