"""The safety net's timings: how long each owner has before the next person is told.

The one home of the defaults: the matcher's registry gives them to a new school or LA, the
notifier falls back on them, and the tables' server defaults repeat them (migrations keep
the values they were written with).

* A school's notification: the DSL at the morning push; the deputy DSL
  `DEPUTY_AFTER_MINUTES` after the school day starts; the LA's safeguarding contact
  `LA_AFTER_MINUTES` after it; then the LA's duty manager `ESCALATION_BEFORE_MINUTES` later,
  and every `DUTY_REPEAT_MINUTES` until someone acknowledges.
* An item addressed to the LA (a child on no roll, at a school that does not take part, a
  delivery that failed for good, attendance not known): the safeguarding contact at once;
  the duty manager `ESCALATION_BEFORE_MINUTES` before the LA's deadline (the LA's day start,
  `LA_DAY_STARTS_AT`), never sooner than that many minutes after the item arrived; then
  every `DUTY_REPEAT_MINUTES`.
* A review: the LA's review contact at once; the duty manager `ESCALATION_BEFORE_MINUTES`
  before the deadline (the earliest school-day start among the candidate schools); then
  every `DUTY_REPEAT_MINUTES` until it is resolved.
* Attendance: the DSL is prompted at `ATTENDANCE_PROMPT_AT` for children with no answer;
  the LA is told at `ATTENDANCE_LA_AT` (London time, on the push day; an LA may change both).
"""

from __future__ import annotations

from datetime import time
from typing import Final

DEPUTY_AFTER_MINUTES: Final = 60  # after the school day starts on the push day
LA_AFTER_MINUTES: Final = 120
DEFAULT_ESCALATION: Final = {"deputy_after_minutes": DEPUTY_AFTER_MINUTES,
                             "la_after_minutes": LA_AFTER_MINUTES}
ESCALATION_BEFORE_MINUTES: Final = 30
DUTY_REPEAT_MINUTES: Final = 60
LA_DAY_STARTS_AT: Final = time(9, 0)
ATTENDANCE_PROMPT_AT: Final = time(10, 0)
ATTENDANCE_LA_AT: Final = time(12, 0)
