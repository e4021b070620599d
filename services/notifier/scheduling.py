"""When a matched notification is pushed, to whom, and when it escalates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from services.common.escalation import DEPUTY_AFTER_MINUTES, LA_AFTER_MINUTES, LA_DAY_STARTS_AT
from services.common.local_time import LONDON
from services.common.school_calendar import SchoolCalendar, is_working_day

DEFAULT_WINDOW_OPENS_AT = time(7, 0)
DEFAULT_DAY_STARTS_AT = time(8, 45)  # the registry's default for a school
DEFAULT_DAY_ENDS_AT = time(18, 0)
DEFAULT_DEPUTY_AFTER = timedelta(minutes=DEPUTY_AFTER_MINUTES)
DEFAULT_LA_AFTER = timedelta(minutes=LA_AFTER_MINUTES)
_SEARCH_DAYS = 400

RecipientRole = Literal["dsl", "holiday_cover"]
PushReason = Literal[
    "in_morning_window",
    "school_day_in_progress",
    "next_morning_window",
    "holiday_cover",
    "held_for_return",
]


@dataclass(frozen=True, slots=True)
class PushPlan:
    """When to push a notification, to which role, and whether the LA must be told too."""

    push_at: datetime
    recipient_role: RecipientRole
    also_tell_la_at: datetime | None
    reason: PushReason
    # in a school holiday with cover: the DSL is told too, on the first school day back
    dsl_return_at: datetime | None = None


class EscalationDeadlines(NamedTuple):
    """When an unacknowledged notification goes to the deputy DSL and then to the LA."""

    deputy_at: datetime
    la_at: datetime


@dataclass(frozen=True, slots=True)
class _Window:
    opens: time
    starts: time
    ends: time


def schedule_push(
    matched_at: datetime,
    *,
    calendar: SchoolCalendar,
    day_starts_at: time,
    has_holiday_cover: bool,
    window_opens_at: time = DEFAULT_WINDOW_OPENS_AT,
    day_ends_at: time = DEFAULT_DAY_ENDS_AT,
    tz: ZoneInfo = LONDON,
) -> PushPlan:
    """Plan the push for a match made at `matched_at` (aware); all returned times are UTC."""
    window = _make_window(window_opens_at, day_starts_at, day_ends_at)
    matched_utc = _to_utc(matched_at)
    school_at = _first_open_moment(matched_utc, calendar.is_school_day, window, tz)
    working_at = _first_open_moment(matched_utc, is_working_day, window, tz)
    # In a school holiday the DSL is away for days: holiday cover and the LA (or, without
    # cover, the LA alone) hear in the next working-day window, and the DSL on the first
    # school day back; a lone INSET day or a long weekend just waits.
    if working_at < school_at and calendar.is_holiday(working_at.astimezone(tz).date()):
        if has_holiday_cover:
            # the designated lead on holiday duty now, the LA beside them, the DSL on return
            return PushPlan(working_at, "holiday_cover", working_at, "holiday_cover",
                            dsl_return_at=school_at)
        return PushPlan(school_at, "dsl", working_at, "held_for_return")
    return PushPlan(school_at, "dsl", None, _reason_for(school_at, matched_utc, window, tz))


def escalation_deadlines(
    push_at: datetime,
    *,
    day_starts_at: time,
    deputy_after: timedelta = DEFAULT_DEPUTY_AFTER,
    la_after: timedelta = DEFAULT_LA_AFTER,
    tz: ZoneInfo = LONDON,
) -> EscalationDeadlines:
    """Count from `day_starts_at` on the push day, or from `push_at` if later; times are UTC."""
    if not timedelta(0) < deputy_after <= la_after:
        raise ValueError("need 0 < deputy_after <= la_after")
    push_utc = _to_utc(push_at)
    base = max(push_utc, school_day_start(push_utc, day_starts_at=day_starts_at, tz=tz))
    return EscalationDeadlines(deputy_at=base + deputy_after, la_at=base + la_after)


def school_day_start(push_at: datetime, *, day_starts_at: time, tz: ZoneInfo = LONDON
                     ) -> datetime:
    """When the school day starts (`day_starts_at`, local) on the day of `push_at`, in UTC."""
    return _local_moment(_to_utc(push_at).astimezone(tz).date(), day_starts_at, tz)


def la_deadline(push_at: datetime, *, tz: ZoneInfo = LONDON) -> datetime:
    """When an item addressed to the LA must be acted on: the LA's day start on the push day,
    or the push itself when it comes later (UTC)."""
    push_utc = _to_utc(push_at)
    return max(push_utc, _local_moment(push_utc.astimezone(tz).date(), LA_DAY_STARTS_AT, tz))


def duty_call_at(deadline_at: datetime, *, arrived_at: datetime, before: timedelta) -> datetime:
    """When the LA's duty manager is first called: `before` ahead of the deadline, but never
    sooner than `before` after the item arrived (the first owner always gets that long)."""
    return max(_to_utc(deadline_at) - before, _to_utc(arrived_at) + before)


def next_repeat(due_at: datetime, now: datetime, *, every: timedelta) -> datetime:
    """The next call of a repeating reminder due at `due_at`, strictly after `now`, on its
    beat: a dispatcher that was away calls once on its return, not once per missed beat."""
    missed = max((_to_utc(now) - _to_utc(due_at)) // every, 0)
    return _to_utc(due_at) + (missed + 1) * every


def next_school_day_start(
    after: datetime, *, calendar: SchoolCalendar | None = None,
    day_starts_at: time = DEFAULT_DAY_STARTS_AT, tz: ZoneInfo = LONDON,
) -> datetime:
    """The first school-day start strictly after `after` (default calendar), in UTC."""
    after_utc = _to_utc(after)
    is_open = (calendar or SchoolCalendar()).is_school_day
    first = after_utc.astimezone(tz).date()
    for day in (first + timedelta(days=n) for n in range(_SEARCH_DAYS)):
        starts = _local_moment(day, day_starts_at, tz)
        if starts > after_utc and is_open(day):
            return starts
    raise ValueError(f"no school day within {_SEARCH_DAYS} days of {after.isoformat()}")


def _make_window(opens: time, starts: time, ends: time) -> _Window:
    if starts >= ends:
        raise ValueError("day_starts_at must be before day_ends_at")
    # A window configured after the school day starts could miss it: open it at the start.
    return _Window(opens=min(opens, starts), starts=starts, ends=ends)


def _first_open_moment(
    after: datetime, is_open: Callable[[date], bool], window: _Window, tz: ZoneInfo
) -> datetime:
    start_date = after.astimezone(tz).date()
    for offset in range(_SEARCH_DAYS):
        day = start_date + timedelta(days=offset)
        if not is_open(day):
            continue
        opens = _local_moment(day, window.opens, tz)
        if after < opens:
            return opens
        if after < _local_moment(day, window.ends, tz):
            return after
    raise ValueError(f"no open day within {_SEARCH_DAYS} days of {after.isoformat()}")


def _reason_for(
    push_at: datetime, matched_at: datetime, window: _Window, tz: ZoneInfo
) -> PushReason:
    if push_at != matched_at:
        return "next_morning_window"
    if matched_at < _local_moment(matched_at.astimezone(tz).date(), window.starts, tz):
        return "in_morning_window"
    return "school_day_in_progress"


def _local_moment(day: date, wall: time, tz: ZoneInfo) -> datetime:
    # Compare in UTC only: aware datetimes sharing one tzinfo compare by wall clock, ignoring
    # fold. A wall time the spring change skips lands after the gap; one the autumn change
    # repeats means its first (earlier) occurrence, per fold=0.
    return datetime.combine(day, wall.replace(tzinfo=None), tzinfo=tz).astimezone(UTC)


def _to_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC)
