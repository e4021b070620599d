"""One notification's place in the safety net: who owns it now, by when they must act, and
who is told next (services/common/escalation.py defines the chains).

* At a school: the DSL (or holiday cover) at the push, the deputy DSL at `deputy_at`, the
  LA's safeguarding contact at `la_at` (`la_since` is set: the LA may open it), then the
  LA's duty manager at `duty_at`, again every `DUTY_REPEAT_MINUTES` until acknowledged.
  A mail that failed for good, or one that fell back to the LA, hands it to the LA early:
  `la_since` and `duty_at` are set then, and the school's own chain carries on beside.
* At the LA: its safeguarding contact at the push, its duty manager at `duty_at` (planned
  at creation, before the LA's deadline), then every `DUTY_REPEAT_MINUTES`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from services.common.escalation import DUTY_REPEAT_MINUTES
from services.notifier.channels import EmailKind
from services.notifier.domain import NotificationState
from services.notifier.scheduling import duty_call_at, la_deadline, next_repeat

ChainAction = Literal["send", "escalate_to_deputy", "escalate_to_la", "call_duty_manager"]
OPEN_STATES: Final[tuple[NotificationState, ...]] = ("scheduled", "sent", "viewed", "escalated")
AWAITING: Final[tuple[NotificationState, ...]] = ("sent", "viewed", "escalated")
DELIVERED: Final[frozenset[str]] = frozenset({*AWAITING, "acknowledged"})
DUTY_REPEAT: Final = timedelta(minutes=DUTY_REPEAT_MINUTES)
EMAIL_KIND: Final[dict[ChainAction, EmailKind]] = {
    "send": "notice", "escalate_to_deputy": "escalation_deputy",
    "escalate_to_la": "escalation_la", "call_duty_manager": "escalation_duty"}


# the `notifications` columns the chain reads (Chain.of)
COLUMNS: Final = ("state", "school_urn", "recipient_role", "push_at", "deputy_at", "la_at",
                  "escalations_sent", "la_since", "duty_at", "duty_calls")


@dataclass(frozen=True, slots=True)
class Chain:
    """The columns of a notification the chain reads."""

    state: NotificationState
    at_school: bool
    recipient_role: str
    push_at: datetime
    deputy_at: datetime | None = None
    la_at: datetime | None = None
    escalations_sent: int = 0
    la_since: datetime | None = None
    duty_at: datetime | None = None
    duty_calls: int = 0

    @classmethod
    def of(cls, row: Any) -> Chain:
        """The chain of a `notifications` row."""
        return cls(state=row.state, at_school=row.school_urn is not None,
                   recipient_role=row.recipient_role, push_at=row.push_at,
                   deputy_at=row.deputy_at, la_at=row.la_at,
                   escalations_sent=row.escalations_sent, la_since=row.la_since,
                   duty_at=row.duty_at, duty_calls=row.duty_calls)

    @property
    def with_la(self) -> bool:
        """Whether the LA is responsible: addressed to it, escalated or handed to it."""
        return not self.at_school or self.la_since is not None or self.escalations_sent >= 2


@dataclass(frozen=True, slots=True)
class Step:
    """What happens next to a notification, when, and which contact role is told."""

    action: ChainAction
    due_at: datetime
    role: str


def first_duty_at(chain: Chain, *, before: timedelta) -> datetime:
    """When the duty manager is first called, for a row that has no `duty_at` yet."""
    if chain.at_school:
        escalated = chain.la_at if chain.escalations_sent >= 2 else None
        return (escalated or chain.la_since or chain.la_at or chain.push_at) + before
    return duty_call_at(la_deadline(chain.push_at), arrived_at=chain.push_at, before=before)


def next_step(chain: Chain, *, before: timedelta) -> Step | None:
    """The next step (maybe already due); None once acknowledged, cancelled or retracted."""
    if chain.state == "scheduled":
        return Step("send", chain.push_at, chain.recipient_role)
    if chain.state not in AWAITING:
        return None
    steps: list[Step] = []
    if chain.at_school and chain.escalations_sent == 0 and chain.deputy_at is not None:
        steps.append(Step("escalate_to_deputy", chain.deputy_at, "deputy_dsl"))
    elif chain.at_school and chain.escalations_sent == 1 and chain.la_at is not None:
        steps.append(Step("escalate_to_la", chain.la_at, "safeguarding"))
    if chain.duty_at is not None:
        steps.append(Step("call_duty_manager", chain.duty_at, "duty_manager"))
    elif chain.with_la or not steps:
        # a row from before the safety net: its duty call was never planned
        steps.append(Step("call_duty_manager", first_duty_at(chain, before=before),
                          "duty_manager"))
    return min(steps, key=lambda s: s.due_at)


def owner(chain: Chain) -> str:
    """The contact role now responsible for acting on the notification."""
    if chain.duty_calls > 0:
        return "duty_manager"
    if chain.with_la:
        return "safeguarding"
    return "deputy_dsl" if chain.escalations_sent == 1 else chain.recipient_role


def deadline(chain: Chain, *, before: timedelta) -> datetime:
    """By when the current owner must act: at a school, before the next person is told; at
    the LA, its deadline (the LA's day start), then each duty call's next repeat."""
    if not chain.at_school:
        base = la_deadline(chain.push_at)
        return max(base, chain.duty_at) if chain.duty_calls and chain.duty_at else base
    if chain.with_la:
        return chain.duty_at or first_duty_at(chain, before=before)
    if chain.escalations_sent == 0 and chain.deputy_at is not None:
        return chain.deputy_at
    return chain.la_at or chain.push_at


def after(chain: Chain, action: ChainAction, now: datetime, *, before: timedelta) -> Chain:
    """The chain once `action` is done at `now` (the dispatcher's move)."""
    escalated: NotificationState = "escalated"
    if action == "send":
        return replace(chain, state="sent")
    if action == "escalate_to_deputy":
        return replace(chain, state=escalated, escalations_sent=1)
    if action == "escalate_to_la":
        moved = replace(chain, state=escalated, escalations_sent=2,
                         la_since=chain.la_since or now)
        return replace(moved, duty_at=chain.duty_at or first_duty_at(moved, before=before))
    due = chain.duty_at or first_duty_at(chain, before=before)
    return replace(chain, state=escalated, duty_calls=chain.duty_calls + 1,
                    duty_at=next_repeat(due, now, every=DUTY_REPEAT))


def handed_to_la(chain: Chain, now: datetime, *, before: timedelta) -> Chain:
    """The chain once the LA has been sent a school's notification (a fallback, or a
    delivery that failed for good): the LA may open it, and its duty manager is called next."""
    if not chain.at_school or chain.la_since is not None:
        return chain
    return replace(chain, la_since=now, duty_at=chain.duty_at or now + before)
