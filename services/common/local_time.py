"""The time zone schools, police and this service's rules all count days in."""

from __future__ import annotations

from typing import Final
from zoneinfo import ZoneInfo

LONDON: Final = ZoneInfo("Europe/London")
