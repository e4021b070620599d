"""How long a school has to acknowledge before the deputy DSL, then the LA, is told.

The one home of the defaults: the matcher's registry gives them to a new school, the
notifier falls back on them, and the tables' server defaults repeat them (migrations
keep the values they were written with).
"""

from __future__ import annotations

from typing import Final

DEPUTY_AFTER_MINUTES: Final = 60  # after the school day starts on the push day
LA_AFTER_MINUTES: Final = 120
DEFAULT_ESCALATION: Final = {"deputy_after_minutes": DEPUTY_AFTER_MINUTES,
                             "la_after_minutes": LA_AFTER_MINUTES}
