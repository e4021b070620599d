"""Push scheduling, escalation and notification-state rules, as tables of fixed cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest

from services.notifier.domain import (
    EscalationDeadlines,
    IllegalTransitionError,
    NotificationEvent,
    NotificationState,
    SchoolCalendar,
    escalation_deadlines,
    is_bank_holiday,
    is_working_day,
    next_due_action,
    on_withdraw,
    schedule_push,
    transition,
)


def days(*spans: str) -> frozenset[date]:
    """Dates from 'YYYY-MM-DD' or inclusive 'YYYY-MM-DD..YYYY-MM-DD' spans."""
    out: set[date] = set()
    for span in spans:
        first, _, last = span.partition("..")
        day, end = date.fromisoformat(first), date.fromisoformat(last or first)
        while day <= end:
            out.add(day)
            day += timedelta(days=1)
    return frozenset(out)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


DEFAULT = SchoolCalendar()
XMAS = SchoolCalendar(closed_dates=days("2026-12-21..2027-01-01"))  # back Monday 4 Jan 2027
OCT_HALF_TERM = SchoolCalendar(closed_dates=days("2026-10-26..2026-10-30"))
MAY_HALF_TERM = SchoolCalendar(closed_dates=days("2026-05-26..2026-05-29"))  # 25 May is a BH
INSET_MON = SchoolCalendar(closed_dates=days("2026-11-09"))
INSET_FRI_MON = SchoolCalendar(closed_dates=days("2026-11-06", "2026-11-09"))
OPEN_MAY_DAY = SchoolCalendar(open_dates=days("2026-05-04"))
OPEN_DST_SUNDAYS = SchoolCalendar(open_dates=days("2026-03-29", "2026-10-25"))


@dataclass(frozen=True)
class Case:
    matched_at: str
    push_at: str
    reason: str = "next_morning_window"
    role: str = "dsl"
    la_at: str | None = None
    calendar: SchoolCalendar = DEFAULT
    cover: bool = False
    day_starts_at: time = time(8, 45)
    window_opens_at: time = time(7, 0)


NOW = "school_day_in_progress"
WINDOW = "in_morning_window"
COVER = "holiday_cover"
HELD = "held_for_return"

# fmt: off
PUSH_CASES = [
    # Daylight saving: wall-clock 07:00 on either side of each change.
    pytest.param(Case("2026-03-29T12:00+01:00", "2026-03-30T07:00+01:00"), id="spring-fwd-sun"),
    pytest.param(Case("2026-03-28T23:30+00:00", "2026-03-30T07:00+01:00"), id="spring-fwd-sat"),
    pytest.param(Case("2026-03-30T06:30+01:00", "2026-03-30T07:00+01:00"), id="bst-monday-early"),
    pytest.param(Case("2026-03-30T06:30+00:00", "2026-03-30T06:30+00:00", WINDOW), id="utc-input"),
    pytest.param(Case("2026-10-25T12:00+00:00", "2026-10-26T07:00+00:00"), id="fall-back-sun"),
    pytest.param(Case("2026-10-25T01:30+01:00", "2026-10-26T07:00+00:00"), id="fall-back-1st"),
    pytest.param(Case("2026-10-25T01:30+00:00", "2026-10-26T07:00+00:00"), id="fall-back-2nd"),
    pytest.param(
        Case("2026-03-28T22:00+00:00", "2026-03-29T02:30+01:00",
             calendar=OPEN_DST_SUNDAYS, window_opens_at=time(1, 30)),
        id="window-in-spring-gap-lands-after-it",
    ),
    pytest.param(
        Case("2026-10-24T22:00+01:00", "2026-10-25T01:30+01:00",
             calendar=OPEN_DST_SUNDAYS, window_opens_at=time(1, 30)),
        id="window-in-repeated-hour-takes-first",
    ),
    # Bank holidays (England and Wales) and the open override.
    pytest.param(Case("2026-04-02T19:00+01:00", "2026-04-07T07:00+01:00"), id="easter-thu"),
    pytest.param(Case("2026-04-06T10:00+01:00", "2026-04-07T07:00+01:00"), id="easter-mon"),
    pytest.param(Case("2026-12-24T19:00+00:00", "2026-12-29T07:00+00:00"), id="christmas-eve"),
    pytest.param(Case("2026-12-28T09:00+00:00", "2026-12-29T07:00+00:00"), id="boxing-sub"),
    pytest.param(Case("2026-05-01T20:00+01:00", "2026-05-05T07:00+01:00"), id="may-day"),
    pytest.param(
        Case("2026-05-01T20:00+01:00", "2026-05-04T07:00+01:00", calendar=OPEN_MAY_DAY),
        id="open-on-may-day",
    ),
    # Closed overrides: one INSET day waits for the DSL; two make a holiday.
    pytest.param(
        Case("2026-11-06T20:00+00:00", "2026-11-10T07:00+00:00", calendar=INSET_MON),
        id="inset-monday",
    ),
    pytest.param(
        Case("2026-11-06T20:00+00:00", "2026-11-10T07:00+00:00", calendar=INSET_MON, cover=True),
        id="inset-monday-cover-unused",
    ),
    pytest.param(
        Case("2026-11-05T19:00+00:00", "2026-11-10T07:00+00:00", HELD,
             la_at="2026-11-06T07:00+00:00", calendar=INSET_FRI_MON),
        id="inset-fri-and-mon-is-holiday",
    ),
    # Weekends and the school day.
    pytest.param(Case("2026-11-20T22:40+00:00", "2026-11-23T07:00+00:00"), id="friday-night"),
    pytest.param(Case("2026-11-21T22:40+00:00", "2026-11-23T07:00+00:00"), id="saturday"),
    pytest.param(Case("2026-11-24T03:00+00:00", "2026-11-24T07:00+00:00"), id="0300"),
    pytest.param(Case("2026-11-24T06:59:59+00:00", "2026-11-24T07:00+00:00"), id="0659"),
    pytest.param(Case("2026-11-24T07:00+00:00", "2026-11-24T07:00+00:00", WINDOW), id="0700"),
    pytest.param(Case("2026-11-24T07:30+00:00", "2026-11-24T07:30+00:00", WINDOW), id="0730"),
    pytest.param(Case("2026-11-24T08:45+00:00", "2026-11-24T08:45+00:00", NOW), id="0845"),
    pytest.param(Case("2026-11-24T11:00+00:00", "2026-11-24T11:00+00:00", NOW), id="1100"),
    pytest.param(Case("2026-11-24T17:59+00:00", "2026-11-24T17:59+00:00", NOW), id="1759"),
    pytest.param(Case("2026-11-24T18:00+00:00", "2026-11-25T07:00+00:00"), id="day-ended"),
    pytest.param(Case("2026-11-24T20:30+00:00", "2026-11-25T07:00+00:00"), id="evening"),
    # Per-school times.
    pytest.param(
        Case("2026-11-24T03:00+00:00", "2026-11-24T08:45+00:00", window_opens_at=time(9, 30)),
        id="late-window-clamped",
    ),
    pytest.param(
        Case("2026-11-24T08:50+00:00", "2026-11-24T08:50+00:00", NOW, window_opens_at=time(9, 30)),
        id="late-window-day-begun",
    ),
    pytest.param(
        Case("2026-11-24T06:00+00:00", "2026-11-24T07:00+00:00", day_starts_at=time(8, 15)),
        id="0815-start-early",
    ),
    pytest.param(
        Case("2026-11-24T08:20+00:00", "2026-11-24T08:20+00:00", NOW, day_starts_at=time(8, 15)),
        id="0815-start-begun",
    ),
    # School holidays: cover if the school has it, else held and the LA told.
    pytest.param(
        Case("2026-12-18T20:00+00:00", "2027-01-04T07:00+00:00", HELD,
             la_at="2026-12-21T07:00+00:00", calendar=XMAS),
        id="xmas-no-cover",
    ),
    pytest.param(
        Case("2026-12-18T20:00+00:00", "2026-12-21T07:00+00:00", COVER, "holiday_cover",
             calendar=XMAS, cover=True),
        id="xmas-cover",
    ),
    pytest.param(
        Case("2026-12-22T10:00+00:00", "2027-01-04T07:00+00:00", HELD,
             la_at="2026-12-22T10:00+00:00", calendar=XMAS),
        id="xmas-no-cover-working-hours",
    ),
    pytest.param(
        Case("2026-12-23T10:00+00:00", "2026-12-23T10:00+00:00", COVER, "holiday_cover",
             calendar=XMAS, cover=True),
        id="xmas-cover-working-hours",
    ),
    pytest.param(
        Case("2026-12-23T19:00+00:00", "2026-12-24T07:00+00:00", COVER, "holiday_cover",
             calendar=XMAS, cover=True),
        id="xmas-cover-evening",
    ),
    pytest.param(
        Case("2026-12-24T19:00+00:00", "2027-01-04T07:00+00:00", HELD,
             la_at="2026-12-29T07:00+00:00", calendar=XMAS),
        id="xmas-eve-no-cover-la-after-bank-holidays",
    ),
    pytest.param(
        Case("2026-12-24T19:00+00:00", "2026-12-29T07:00+00:00", COVER, "holiday_cover",
             calendar=XMAS, cover=True),
        id="xmas-eve-cover",
    ),
    pytest.param(
        Case("2026-12-31T19:00+00:00", "2027-01-04T07:00+00:00", calendar=XMAS, cover=True),
        id="last-holiday-evening-goes-to-dsl",
    ),
    pytest.param(
        Case("2026-12-18T14:00+00:00", "2026-12-18T14:00+00:00", NOW, calendar=XMAS, cover=True),
        id="last-day-of-term-in-hours",
    ),
    pytest.param(
        Case("2026-10-25T12:00+00:00", "2026-11-02T07:00+00:00", HELD,
             la_at="2026-10-26T07:00+00:00", calendar=OCT_HALF_TERM),
        id="half-term-across-fall-back",
    ),
    pytest.param(
        Case("2026-05-22T20:00+01:00", "2026-06-01T07:00+01:00", HELD,
             la_at="2026-05-26T07:00+01:00", calendar=MAY_HALF_TERM),
        id="half-term-after-bank-holiday-no-cover",
    ),
    pytest.param(
        Case("2026-05-22T20:00+01:00", "2026-05-26T07:00+01:00", COVER, "holiday_cover",
             calendar=MAY_HALF_TERM, cover=True),
        id="half-term-after-bank-holiday-cover",
    ),
]
# fmt: on


@pytest.mark.parametrize("case", PUSH_CASES)
def test_schedule_push(case: Case) -> None:
    plan = schedule_push(
        at(case.matched_at),
        calendar=case.calendar,
        day_starts_at=case.day_starts_at,
        window_opens_at=case.window_opens_at,
        has_holiday_cover=case.cover,
    )
    assert plan.push_at == at(case.push_at)
    assert plan.push_at.tzinfo is UTC
    assert plan.recipient_role == case.role
    assert plan.reason == case.reason
    expected_la = at(case.la_at) if case.la_at else None
    if case.role == COVER:  # the LA hears beside the cover; the DSL when the school is back
        expected_la = plan.push_at
        held = schedule_push(at(case.matched_at), calendar=case.calendar,
                             day_starts_at=case.day_starts_at,
                             window_opens_at=case.window_opens_at, has_holiday_cover=False)
        assert plan.dsl_return_at == held.push_at > plan.push_at
    else:
        assert plan.dsl_return_at is None
    assert plan.also_tell_la_at == expected_la
    if plan.also_tell_la_at is not None:
        assert plan.also_tell_la_at.tzinfo is UTC


def test_schedule_push_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        schedule_push(
            datetime(2026, 11, 24, 9),
            calendar=DEFAULT,
            day_starts_at=time(8, 45),
            has_holiday_cover=False,
        )


def test_schedule_push_refuses_day_ending_before_it_starts() -> None:
    with pytest.raises(ValueError, match="day_ends_at"):
        schedule_push(
            at("2026-11-24T09:00+00:00"),
            calendar=DEFAULT,
            day_starts_at=time(8, 45),
            day_ends_at=time(8, 0),
            has_holiday_cover=False,
        )


def test_schedule_push_refuses_a_school_never_open() -> None:
    never = SchoolCalendar(closed_dates=days("2026-11-24..2028-01-31"))
    with pytest.raises(ValueError, match="no open day"):
        schedule_push(
            at("2026-11-24T09:00+00:00"),
            calendar=never,
            day_starts_at=time(8, 45),
            has_holiday_cover=False,
        )


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2026-12-28", True),  # Boxing Day substitute
        ("2026-04-06", True),  # Easter Monday
        ("2022-09-19", True),  # one-off: state funeral
        ("2026-11-24", False),
    ],
)
def test_bank_holidays_of_england_and_wales(day: str, expected: bool) -> None:
    assert is_bank_holiday(date.fromisoformat(day)) is expected


@pytest.mark.parametrize(
    ("calendar", "day", "school_day", "holiday"),
    [
        pytest.param(DEFAULT, "2026-11-24", True, False, id="tuesday"),
        pytest.param(DEFAULT, "2026-11-21", False, False, id="saturday"),
        pytest.param(DEFAULT, "2026-12-25", False, False, id="bank-holiday-not-a-holiday"),
        pytest.param(OPEN_MAY_DAY, "2026-05-04", True, False, id="open-on-bank-holiday"),
        pytest.param(OPEN_DST_SUNDAYS, "2026-03-29", True, False, id="open-on-sunday"),
        pytest.param(INSET_MON, "2026-11-09", False, False, id="single-inset"),
        pytest.param(INSET_FRI_MON, "2026-11-09", False, True, id="run-across-weekend"),
        pytest.param(MAY_HALF_TERM, "2026-05-26", False, True, id="run-after-bank-holiday"),
        pytest.param(XMAS, "2026-12-31", False, True, id="run-end"),
        pytest.param(XMAS, "2026-12-18", True, False, id="day-before-run"),
        pytest.param(
            SchoolCalendar(
                closed_dates=days("2026-05-01", "2026-05-05"), open_dates=days("2026-05-04")
            ),
            "2026-05-05",
            False,
            False,
            id="open-bank-holiday-breaks-run",
        ),
    ],
)
def test_school_calendar(
    calendar: SchoolCalendar, day: str, school_day: bool, holiday: bool
) -> None:
    assert calendar.is_school_day(date.fromisoformat(day)) is school_day
    assert calendar.is_holiday(date.fromisoformat(day)) is holiday


def test_working_days_ignore_school_overrides() -> None:
    assert is_working_day(date(2026, 12, 22))
    assert not is_working_day(date(2026, 12, 28))
    assert not is_working_day(date(2026, 11, 21))


def test_calendar_from_overrides() -> None:
    calendar = SchoolCalendar.from_overrides(
        [(date(2026, 11, 9), "closed"), (date(2026, 5, 4), "open")]
    )
    assert calendar == SchoolCalendar(
        closed_dates=days("2026-11-09"), open_dates=days("2026-05-04")
    )


def test_calendar_refuses_a_date_both_closed_and_open() -> None:
    with pytest.raises(ValueError, match="both closed and open"):
        SchoolCalendar(closed_dates=days("2026-11-09"), open_dates=days("2026-11-09"))


# fmt: off
ESCALATION_CASES = [
    pytest.param("2026-11-24T07:00+00:00", time(8, 45), 60, 120,
                 "2026-11-24T09:45+00:00", "2026-11-24T10:45+00:00", id="from-day-start"),
    pytest.param("2026-11-24T11:00+00:00", time(8, 45), 60, 120,
                 "2026-11-24T12:00+00:00", "2026-11-24T13:00+00:00", id="from-mid-day-push"),
    pytest.param("2026-11-24T07:00+00:00", time(8, 15), 30, 90,
                 "2026-11-24T08:45+00:00", "2026-11-24T09:45+00:00", id="per-school"),
    pytest.param("2026-03-30T07:00+01:00", time(8, 45), 60, 120,
                 "2026-03-30T09:45+01:00", "2026-03-30T10:45+01:00", id="bst-day-start"),
    pytest.param("2026-03-29T00:30+00:00", time(0, 15), 60, 120,
                 "2026-03-29T02:30+01:00", "2026-03-29T03:30+01:00", id="across-spring-fwd"),
    pytest.param("2026-10-25T00:30+01:00", time(0, 45), 60, 120,
                 "2026-10-25T01:45+01:00", "2026-10-25T01:45+00:00", id="across-fall-back"),
]
# fmt: on


@pytest.mark.parametrize(
    ("push_at", "day_starts_at", "deputy_after", "la_after", "deputy_at", "la_at"),
    ESCALATION_CASES,
)
def test_escalation_deadlines(
    push_at: str, day_starts_at: time, deputy_after: int, la_after: int, deputy_at: str, la_at: str
) -> None:
    deadlines = escalation_deadlines(
        at(push_at),
        day_starts_at=day_starts_at,
        deputy_after=timedelta(minutes=deputy_after),
        la_after=timedelta(minutes=la_after),
    )
    assert deadlines == EscalationDeadlines(at(deputy_at), at(la_at))
    assert deadlines.deputy_at.tzinfo is UTC


@pytest.mark.parametrize(("deputy_after", "la_after"), [(0, 60), (120, 60), (-5, 60)])
def test_escalation_refuses_bad_delays(deputy_after: int, la_after: int) -> None:
    with pytest.raises(ValueError, match="deputy_after"):
        escalation_deadlines(
            at("2026-11-24T07:00+00:00"),
            day_starts_at=time(8, 45),
            deputy_after=timedelta(minutes=deputy_after),
            la_after=timedelta(minutes=la_after),
        )


LEGAL: list[tuple[NotificationState, NotificationEvent, NotificationState]] = [
    ("scheduled", "send", "sent"),
    ("scheduled", "withdraw", "cancelled"),
    ("scheduled", "view", "scheduled"),
    ("scheduled", "acknowledge", "acknowledged"),
    ("sent", "view", "viewed"),
    ("sent", "acknowledge", "acknowledged"),
    ("sent", "escalate", "escalated"),
    ("sent", "withdraw", "retracted"),
    ("viewed", "view", "viewed"),
    ("viewed", "acknowledge", "acknowledged"),
    ("viewed", "escalate", "escalated"),
    ("viewed", "withdraw", "retracted"),
    ("escalated", "escalate", "escalated"),
    ("escalated", "view", "escalated"),
    ("escalated", "acknowledge", "acknowledged"),
    ("escalated", "withdraw", "retracted"),
    ("acknowledged", "view", "acknowledged"),
    ("acknowledged", "withdraw", "retracted"),
]

ILLEGAL: list[tuple[NotificationState, NotificationEvent]] = [
    ("scheduled", "escalate"),
    ("sent", "send"),
    ("acknowledged", "acknowledge"),
    ("acknowledged", "escalate"),
    ("cancelled", "send"),
    ("cancelled", "withdraw"),
    ("retracted", "view"),
    ("retracted", "withdraw"),
]


@pytest.mark.parametrize(("state", "event", "expected"), LEGAL)
def test_legal_transitions(
    state: NotificationState, event: NotificationEvent, expected: NotificationState
) -> None:
    assert transition(state, event) == expected


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_illegal_transitions(state: NotificationState, event: NotificationEvent) -> None:
    with pytest.raises(IllegalTransitionError) as raised:
        transition(state, event)
    assert (raised.value.state, raised.value.event) == (state, event)


def test_withdraw_cancels_before_delivery_and_retracts_after() -> None:
    assert on_withdraw("scheduled") == "cancelled"
    assert {on_withdraw(s) for s in ("sent", "viewed", "escalated", "acknowledged")} == {
        "retracted"
    }


PUSH = at("2026-11-24T07:00+00:00")
DEADLINES = EscalationDeadlines(at("2026-11-24T09:45+00:00"), at("2026-11-24T10:45+00:00"))


@pytest.mark.parametrize(
    ("state", "now", "escalations_sent", "expected"),
    [
        ("scheduled", "2026-11-24T06:59+00:00", 0, None),
        ("scheduled", "2026-11-24T07:00+00:00", 0, "send"),
        ("sent", "2026-11-24T09:44+00:00", 0, None),
        ("viewed", "2026-11-24T09:45+00:00", 0, "escalate_to_deputy"),
        ("sent", "2026-11-24T11:00+00:00", 0, "escalate_to_deputy"),
        ("escalated", "2026-11-24T10:44+00:00", 1, None),
        ("escalated", "2026-11-24T10:45+00:00", 1, "escalate_to_la"),
        ("escalated", "2026-11-24T12:00+00:00", 2, None),
        ("acknowledged", "2026-11-24T12:00+00:00", 0, None),
        ("cancelled", "2026-11-24T12:00+00:00", 0, None),
        ("retracted", "2026-11-24T12:00+00:00", 1, None),
    ],
)
def test_next_due_action(
    state: NotificationState, now: str, escalations_sent: int, expected: str | None
) -> None:
    action = next_due_action(
        state, at(now), push_at=PUSH, deadlines=DEADLINES, escalations_sent=escalations_sent
    )
    assert action == expected
