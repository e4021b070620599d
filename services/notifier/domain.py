"""Notifier rules: notification states, plus the calendar and scheduling rules re-exported."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from services.common.local_time import LONDON
from services.common.school_calendar import (
    SchoolCalendar,
    is_bank_holiday,
    is_working_day,
)
from services.notifier.scheduling import (
    EscalationDeadlines,
    PushPlan,
    escalation_deadlines,
    schedule_push,
)

__all__ = [
    "LONDON",
    "DueAction",
    "EscalationDeadlines",
    "IllegalTransitionError",
    "NotificationEvent",
    "NotificationState",
    "PushPlan",
    "SchoolCalendar",
    "escalation_deadlines",
    "is_bank_holiday",
    "is_working_day",
    "next_due_action",
    "on_withdraw",
    "schedule_push",
    "transition",
]

NotificationState = Literal[
    "scheduled", "sent", "viewed", "acknowledged", "escalated", "cancelled", "retracted"
]
NotificationEvent = Literal["send", "view", "acknowledge", "escalate", "withdraw"]
DueAction = Literal["send", "escalate_to_deputy", "escalate_to_la"]

_TRANSITIONS: dict[tuple[NotificationState, NotificationEvent], NotificationState] = {
    ("scheduled", "send"): "sent",
    # visible from the moment it exists: a DSL who reads it before the morning push may
    # act on it; reading alone still leaves the push to happen
    ("scheduled", "view"): "scheduled",
    ("scheduled", "acknowledge"): "acknowledged",
    ("sent", "view"): "viewed",
    ("sent", "acknowledge"): "acknowledged",
    ("sent", "escalate"): "escalated",
    ("viewed", "view"): "viewed",
    ("viewed", "acknowledge"): "acknowledged",
    ("viewed", "escalate"): "escalated",
    ("escalated", "view"): "escalated",
    ("escalated", "escalate"): "escalated",
    ("escalated", "acknowledge"): "acknowledged",
    ("acknowledged", "view"): "acknowledged",
}
_DELIVERED: frozenset[NotificationState] = frozenset(
    {"sent", "viewed", "escalated", "acknowledged"}
)
_AWAITING_ACK: frozenset[NotificationState] = frozenset({"sent", "viewed", "escalated"})


class IllegalTransitionError(ValueError):
    """An event that the notification's current state does not allow."""

    def __init__(self, state: NotificationState, event: NotificationEvent) -> None:
        super().__init__(f"cannot {event} a notification that is {state}")
        self.state = state
        self.event = event


def transition(state: NotificationState, event: NotificationEvent) -> NotificationState:
    """Return the state after `event`, or raise IllegalTransitionError."""
    if event == "withdraw":
        return on_withdraw(state)
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransitionError(state, event) from None


def on_withdraw(state: NotificationState) -> Literal["cancelled", "retracted"]:
    """Cancel a notification not yet delivered; retract one already delivered."""
    if state == "scheduled":
        return "cancelled"
    if state in _DELIVERED:
        return "retracted"
    raise IllegalTransitionError(state, "withdraw")


def next_due_action(
    state: NotificationState,
    now: datetime,
    *,
    push_at: datetime,
    deadlines: EscalationDeadlines,
    escalations_sent: int = 0,
) -> DueAction | None:
    """Return the action that is due at `now`, if any; escalations go deputy first, then LA."""
    if state == "scheduled":
        return "send" if now >= push_at else None
    if state not in _AWAITING_ACK:
        return None
    if escalations_sent == 0 and now >= deadlines.deputy_at:
        return "escalate_to_deputy"
    if escalations_sent == 1 and now >= deadlines.la_at:
        return "escalate_to_la"
    return None
