"""The partnership's figures, per LA, force and ISO week (Europe/London), from the read model's
rows, and their suppression as official statistics do it. Plain functions over plain values.

Which week a figure falls in: a notification's (and its escalations', acknowledgement's and
actions') is the week it was scheduled; a child routed to the LA, the week of that outcome; a
review is counted opened in the week it was queued and resolved in the week it was resolved.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal, TypeVar

from schemas.notifications import ACTION_TYPES
from services.common.local_time import LONDON

SUPPRESS_BELOW = 5  # a count 1-4, or a share or median over fewer than 5, is not shown
TARGET_SHARE = 0.95  # the share the partnership wants told and acknowledged before school
DEFAULT_WEEKS = 12
MAX_WEEKS = 106  # two years, so that a page's range stays bounded
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class NotificationRow:
    """A notification as the read model holds it: codes and times."""

    la_code: str | None
    force_code: str
    scheduled_at: datetime
    deadline_at: datetime | None = None
    pushed_at: datetime | None = None
    acknowledged_at: datetime | None = None
    escalated_deputy_at: datetime | None = None
    escalated_la_at: datetime | None = None
    repeat_children: int = 0


@dataclass(frozen=True)
class ActionRow:
    """An action recorded for a notification scheduled at `scheduled_at`."""

    la_code: str | None
    force_code: str
    scheduled_at: datetime
    action_type: str


@dataclass(frozen=True)
class ChildRow:
    """A reported child's latest outcome."""

    la_code: str | None
    force_code: str | None
    outcome: str
    decided_at: datetime


@dataclass(frozen=True)
class ReviewRow:
    """A review: when it was queued and when (if yet) it was resolved."""

    la_code: str | None
    force_code: str | None
    opened_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class Rows:
    """Everything the figures are computed from."""

    notifications: list[NotificationRow] = field(default_factory=list)
    actions: list[ActionRow] = field(default_factory=list)
    children: list[ChildRow] = field(default_factory=list)
    reviews: list[ReviewRow] = field(default_factory=list)


@dataclass
class Tally:
    """The raw figures of one group (before suppression)."""

    notifications: int = 0
    with_deadline: int = 0
    pushed_in_time: int = 0
    acknowledged_in_time: int = 0
    minutes_to_acknowledge: list[float] = field(default_factory=list)
    escalations_deputy: int = 0
    escalations_la: int = 0
    reviews_opened: int = 0
    reviews_resolved: int = 0
    review_age_minutes: list[float] = field(default_factory=list)
    routed_to_la: int = 0
    repeat_children: int = 0
    actions: Counter[str] = field(default_factory=Counter)

    def add_notification(self, row: NotificationRow) -> None:
        """Count one notification, its timeliness and its escalations."""
        self.notifications += 1
        self.repeat_children += row.repeat_children
        self.escalations_deputy += row.escalated_deputy_at is not None
        self.escalations_la += row.escalated_la_at is not None
        if row.acknowledged_at is not None:
            self.minutes_to_acknowledge.append(_minutes(row.acknowledged_at - row.scheduled_at))
        if row.deadline_at is not None:  # a school's: an LA's has no school day to beat
            self.with_deadline += 1
            self.pushed_in_time += _by(row.pushed_at, row.deadline_at)
            self.acknowledged_in_time += _by(row.acknowledged_at, row.deadline_at)


def _by(moment: datetime | None, deadline: datetime) -> bool:
    return moment is not None and moment <= deadline


def _minutes(span: timedelta) -> float:
    return max(span.total_seconds(), 0.0) / 60


# --- weeks -----------------------------------------------------------------------------------

def iso_week(moment: datetime) -> str:
    """The ISO week of a moment in London: '2026-W49'."""
    year, week, _ = moment.astimezone(LONDON).isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(text: str) -> str | None:
    """'2026-W49' when it names a real ISO week, else None."""
    found = _WEEK.match(text.strip())
    if not found:
        return None
    try:
        monday = date.fromisocalendar(int(found[1]), int(found[2]), 1)
    except ValueError:
        return None
    return iso_week(datetime(monday.year, monday.month, monday.day, 12, tzinfo=LONDON))


def week_monday(week: str) -> date:
    """The Monday an ISO week starts on."""
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def week_start(week: str) -> datetime:
    """Midnight in London at the start of the week (what a range query starts from)."""
    monday = week_monday(week)
    return datetime(monday.year, monday.month, monday.day, tzinfo=LONDON)


def weeks_from(first: str, last: str) -> list[str]:
    """Every ISO week from `first` to `last`, both included (none when they are reversed)."""
    out, monday = [], week_monday(first)
    end = week_monday(last)
    while monday <= end:
        out.append(f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}")
        monday += timedelta(days=7)
    return out


def last_weeks(now: datetime, count: int = DEFAULT_WEEKS) -> tuple[str, str]:
    """The first and last of the `count` weeks up to and including the week of `now`."""
    return iso_week(now - timedelta(weeks=count - 1)), iso_week(now)


# --- grouping --------------------------------------------------------------------------------

Key = tuple[str, str, str]  # (LA code, force code, ISO week); "" for an unknown LA or force


def by_key(key: Key) -> Key:
    """Group by LA, force and week (the CSV's rows)."""
    return key


def tally(rows: Rows, group: Callable[[Key], K]) -> dict[K, Tally]:
    """The raw figures of each group: `group` maps an (LA, force, week) key to the group's."""
    out: dict[K, Tally] = {}

    def of(la: str | None, force: str | None, moment: datetime) -> Tally:
        return out.setdefault(group((la or "", force or "", iso_week(moment))), Tally())

    for n in rows.notifications:
        of(n.la_code, n.force_code, n.scheduled_at).add_notification(n)
    for a in rows.actions:
        of(a.la_code, a.force_code, a.scheduled_at).actions[a.action_type] += 1
    for c in rows.children:
        if c.outcome == "unmatched":
            of(c.la_code, c.force_code, c.decided_at).routed_to_la += 1
    for r in rows.reviews:
        if r.opened_at is not None:
            of(r.la_code, r.force_code, r.opened_at).reviews_opened += 1
        if r.resolved_at is not None:
            resolved = of(r.la_code, r.force_code, r.resolved_at)
            resolved.reviews_resolved += 1
            if r.opened_at is not None:
                resolved.review_age_minutes.append(_minutes(r.resolved_at - r.opened_at))
    return out


# --- suppression -----------------------------------------------------------------------------

Unit = Literal["count", "share", "minutes"]
Status = Literal["shown", "suppressed", "none"]


@dataclass(frozen=True)
class Cell:
    """One figure as it may be shown: its value, or suppressed ([c]), or nothing to show ([z]:
    a share or median over nothing)."""

    unit: Unit
    status: Status
    value: float | None = None

    def csv(self) -> str:
        """The cell in the CSV: a number, '[c]' (confidential) or '[z]' (not applicable)."""
        if self.status == "suppressed":
            return "[c]"
        if self.status == "none" or self.value is None:
            return "[z]"
        if self.unit == "share":
            return f"{self.value * 100:.1f}"
        return str(round(self.value))


def count_cell(n: int) -> Cell:
    """A count: 0 as 0, 1 to 4 suppressed, 5 or more shown."""
    return Cell("count", "suppressed" if 0 < n < SUPPRESS_BELOW else "shown", n)


def share_cell(part: int, base: int) -> Cell:
    """A share of `base`: nothing over 0, suppressed over 1 to 4."""
    if base == 0:
        return Cell("share", "none")
    if base < SUPPRESS_BELOW:
        return Cell("share", "suppressed")
    return Cell("share", "shown", part / base)


def minutes_cell(values: list[float], which: Callable[[list[float]], float]) -> Cell:
    """A statistic of durations in minutes: nothing over none, suppressed over 1 to 4."""
    if not values:
        return Cell("minutes", "none")
    if len(values) < SUPPRESS_BELOW:
        return Cell("minutes", "suppressed")
    return Cell("minutes", "shown", which(values))


def median(values: list[float]) -> float:
    """The median."""
    return float(statistics.median(values))


def p90(values: list[float]) -> float:
    """The 90th percentile, nearest rank: the smallest value at least 90% are no larger than."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)), 1) - 1]


ACTION_LABELS: dict[str, str] = {
    "education_welfare": "Education welfare", "educational_psychology": "Educational psychology",
    "school_nurse": "School nurse", "camhs": "CAMHS", "early_help": "Early Help (CAF)",
    "childrens_social_care": "Children's social care", "housing": "Housing",
    "young_carers": "Young carers", "youth_offending": "Youth offending",
    "voluntary": "A voluntary agency", "domestic_abuse_services": "Domestic abuse services",
    "police_contact": "The police contact", "support_in_school": "Support in school",
    "none_needed": "None needed",
}
FIGURES: dict[str, str] = {  # column → what it is, in the order pages and the CSV show them
    "notifications": "Notifications",
    "pushed_before_school_day_pct": "Told before the school day started (%)",
    "acknowledged_before_school_day_pct": "Acknowledged before the school day started (%)",
    "minutes_to_acknowledge_median": "Time to acknowledge, median (minutes)",
    "minutes_to_acknowledge_p90": "Time to acknowledge, 90th percentile (minutes)",
    "escalations_deputy": "Escalated to the deputy DSL",
    "escalations_la": "Escalated to the LA",
    "reviews_opened": "Reviews opened",
    "reviews_resolved": "Reviews resolved",
    "review_age_minutes_median": "Age of reviews at resolution, median (minutes)",
    "children_routed_to_la": "Children routed to the LA",
    "children_notified_before": "Children notified twice or more in 12 months",
    **{f"actions_{t}": f"Actions: {ACTION_LABELS[t]}" for t in ACTION_TYPES},
}


def shown(t: Tally) -> dict[str, Cell]:
    """Every figure of a group, suppressed as it must be shown."""
    return {
        "notifications": count_cell(t.notifications),
        "pushed_before_school_day_pct": share_cell(t.pushed_in_time, t.with_deadline),
        "acknowledged_before_school_day_pct": share_cell(t.acknowledged_in_time,
                                                         t.with_deadline),
        "minutes_to_acknowledge_median": minutes_cell(t.minutes_to_acknowledge, median),
        "minutes_to_acknowledge_p90": minutes_cell(t.minutes_to_acknowledge, p90),
        "escalations_deputy": count_cell(t.escalations_deputy),
        "escalations_la": count_cell(t.escalations_la),
        "reviews_opened": count_cell(t.reviews_opened),
        "reviews_resolved": count_cell(t.reviews_resolved),
        "review_age_minutes_median": minutes_cell(t.review_age_minutes, median),
        "children_routed_to_la": count_cell(t.routed_to_la),
        "children_notified_before": count_cell(t.repeat_children),
        **{f"actions_{a}": count_cell(t.actions[a]) for a in ACTION_TYPES},
    }


CSV_HEADER = ("la_code", "force_code", "iso_week", "week_starts", *FIGURES)


def csv_rows(rows: Rows, weeks: Iterable[str]) -> list[list[str]]:
    """One row per LA, force seen and week of `weeks` (weeks with nothing are zeros), sorted."""
    tallies = tally(rows, by_key)
    weeks = list(weeks)
    pairs = sorted({(la, force) for la, force, _ in tallies})
    out = []
    for la, force in pairs:
        for week in weeks:
            cells = shown(tallies.get((la, force, week), Tally()))
            out.append([la, force, week, week_monday(week).isoformat(),
                        *(cells[name].csv() for name in FIGURES)])
    return out


def by_week(rows: Rows, weeks: Iterable[str]) -> list[tuple[str, dict[str, Cell]]]:
    """Each week's figures over all the rows given (the chosen LAs and forces together)."""
    tallies = tally(rows, group=lambda key: key[2])
    return [(week, shown(tallies.get(week, Tally()))) for week in weeks]
