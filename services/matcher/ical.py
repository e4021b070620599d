"""Term dates from iCalendar (RFC 5545): the all-day events schools and LAs publish.

Each event is a holiday, an INSET day or a term, told by its SUMMARY; recurring events are
expanded and a timed event counts only when it covers whole days in England. The result is
the calendar's closed days: every holiday and INSET day, and every working day in a gap
between two terms. Anything else in the file is refused with a message naming the event.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import icalendar
import recurring_ical_events
from icalendar.error import InvalidCalendar

from services.common.local_time import LONDON
from services.common.school_calendar import is_working_day

EventKind = Literal["holiday", "inset", "term"]
MAX_EVENTS = 5_000
MAX_SPAN = timedelta(days=3 * 366)
_WHOLE_DAY_FREQS = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
_TIMES_OF_DAY = frozenset({"BYHOUR", "BYMINUTE", "BYSECOND"})
_HOLIDAY = re.compile(r"\b(holiday|holidays|half[\s-]?term|break|closed|closure|christmas|"
                      r"easter|bank holiday|may day)\b", re.IGNORECASE)
_INSET = re.compile(r"\b(inset|training day|staff (development|training)|teacher day|"
                    r"pd day|non[\s-]?pupil day|professional development)\b", re.IGNORECASE)
_TERM = re.compile(r"\bterm\b", re.IGNORECASE)


class IcsRejected(ValueError):
    """The file was refused whole; `problems` names each event that could not be read."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the iCalendar file: {problems[0]}")
        self.problems = problems


@dataclass(frozen=True, slots=True)
class TermEvent:
    """One all-day event of the file, classified: `last` is inclusive."""

    kind: EventKind
    summary: str
    first: date
    last: date


def classify(summary: str) -> EventKind | None:
    """A holiday, an INSET day or a term, by name; None when the name says none of them."""
    if _INSET.search(summary):
        return "inset"
    if _HOLIDAY.search(summary):
        return "holiday"
    if _TERM.search(summary):
        return "term"
    return None


def read_events(data: bytes) -> list[TermEvent]:
    """Every event of the file as a classified run of whole days, or IcsRejected."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise IcsRejected([f"not an iCalendar file ({type(exc).__name__})"]) from None
    masters = [c for c in calendar.walk("VEVENT")]
    if not masters:
        raise IcsRejected(["the file has no events (VEVENT)"])
    # read each event as written first: expansion would quietly drop one that ends too soon,
    # or one that starts after the window it expands
    problems = [f"{_label(c)}: {why}" for c in masters if (why := _unreadable(c)) is not None]
    if problems:
        raise IcsRejected(problems)
    first_day = min(_whole_days(c)[0] for c in masters)
    window = (first_day, first_day + MAX_SPAN)
    problems = [f"{_label(c)} on {day.isoformat()}: starts more than three years after the "
                "file's first event (import at most three years at a time)"
                for c in masters if (day := _whole_days(c)[0]) > window[1]]
    if problems:
        raise IcsRejected(problems)
    occurrences = _expand(calendar, masters, window)
    events: list[TermEvent] = []
    for event in occurrences[:MAX_EVENTS + 1]:
        named, label = str(event.get("SUMMARY", "")).strip(), _label(event)
        try:
            first, last = _whole_days(event)
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
            continue
        kind = classify(named)
        if kind is None:
            problems.append(f"{label} on {first.isoformat()}: its name says neither holiday, "
                            "term nor INSET day")
            continue
        events.append(TermEvent(kind, named, first, last))
    if len(occurrences) > MAX_EVENTS:
        problems.append(f"more than {MAX_EVENTS} events")
    if problems:
        raise IcsRejected(problems)
    return sorted(events, key=lambda e: (e.first, e.last, e.kind))


def _expand(calendar: Any, masters: list[Any], window: tuple[date, date]) -> list[Any]:
    """Every occurrence in the window, one recurring series at a time, stopping past
    MAX_EVENTS: with rules no finer than a day, a series yields at most one a day."""
    series: dict[str, list[Any]] = {}
    for n, event in enumerate(masters):
        recurs = any(event.get(p) is not None for p in ("RRULE", "RDATE", "RECURRENCE-ID"))
        series.setdefault(f"uid:{event.get('UID', n)}" if recurs else "single", []).append(event)
    zones = calendar.walk("VTIMEZONE")
    found: list[Any] = []
    for events in series.values():
        one = icalendar.Calendar()
        for component in (*zones, *events):
            one.add_component(component)
        try:
            found += recurring_ical_events.of(one).between(*window)
        except Exception as exc:  # the library raises its own types for broken rules
            raise IcsRejected([f"a recurrence rule cannot be expanded ({type(exc).__name__})"]
                              ) from None
        if len(found) > MAX_EVENTS:
            break
    return found


def closed_days(events: Iterable[TermEvent]) -> list[date]:
    """Holidays, INSET days, and the working days between one term's end and the next's start.

    A holiday inside a term (half term within an "Autumn term" event) closes those days."""
    closed: set[date] = set()
    terms = sorted((e for e in events if e.kind == "term"), key=lambda e: e.first)
    for event in events:
        if event.kind != "term":
            closed |= {d for d in _days(event.first, event.last) if is_working_day(d)}
    for before, after in itertools.pairwise(terms):
        gap = _days(before.last + timedelta(days=1), after.first - timedelta(days=1))
        closed |= {d for d in gap if is_working_day(d)}
    return sorted(closed)


def calendar_from_ics(data: bytes) -> list[tuple[date, Literal["closed"]]]:
    """The file as calendar rows (`date`, "closed"), as the CSV form gives them."""
    return [(day, "closed") for day in closed_days(read_events(data))]


def _label(event: Any) -> str:
    named = str(event.get("SUMMARY", "")).strip()
    return f"event {named[:80]!r}" if named else "an event without a SUMMARY"


def _unreadable(event: Any) -> str | None:
    try:
        _whole_days(event)
        if _sub_daily(event):
            return "recurs more often than once a day (term dates are whole days)"
    except InvalidCalendar:  # icalendar keeps a malformed value and refuses to read it
        return "a date, time or recurrence rule in it cannot be read"
    except ValueError as exc:
        return str(exc)
    return None


def _sub_daily(event: Any) -> bool:
    """Whether a rule repeats within a day (expanding it would run to millions)."""
    rules = event.get("RRULE")
    listed = rules if isinstance(rules, list) else [] if rules is None else [rules]
    return any(set(map(str, rule.get("FREQ", []))) - _WHOLE_DAY_FREQS
               or _TIMES_OF_DAY & set(rule) for rule in listed)


def _whole_days(event: Any) -> tuple[date, date]:
    start, end = event.get("DTSTART"), event.get("DTEND")
    if start is None:
        raise ValueError("no start date (DTSTART)")
    first = start.dt
    stop = end.dt if end is not None else None
    if isinstance(first, datetime):
        first_day, stop_day = _midnights(first, stop)
    else:
        first_day = first
        stop_day = stop if stop is not None else first + timedelta(days=1)
        duration = event.get("DURATION")
        if end is None and duration is not None:
            stop_day = first + duration.dt
    if isinstance(stop_day, datetime):
        raise ValueError("starts on a date but ends at a time")
    if stop_day <= first_day:
        raise ValueError("ends before it starts")
    return first_day, stop_day - timedelta(days=1)


def _midnights(first: datetime, stop: Any) -> tuple[date, date]:
    """A timed event counts when it runs from midnight to midnight in England."""
    if first.tzinfo is None:
        raise ValueError("a time without a time zone (floating time) is ambiguous")
    if not isinstance(stop, datetime):
        raise ValueError("a timed event needs an end time (DTEND)")
    local_first, local_stop = first.astimezone(LONDON), stop.astimezone(LONDON)
    if (local_first.time(), local_stop.time()) != (datetime.min.time(), datetime.min.time()):
        raise ValueError("is not an all-day event (it starts or ends during a day in England)")
    return local_first.date(), local_stop.date()


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
