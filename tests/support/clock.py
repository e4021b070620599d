"""A clock tests set by hand, and the `clock` fixture: a little behind the real time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest


@dataclass
class Clock:
    """What a service asks for the time: `now`, moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """Tokens are checked against the real time: start a little behind it, as each portal
    sign-in steps the clock on by one TOTP interval (tests/support/portal.py)."""
    return Clock(datetime.now(UTC) - timedelta(minutes=5))
