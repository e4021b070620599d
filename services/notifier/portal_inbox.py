"""The inbox that scales: the notifications a person may see, newest first, a page at a time
(LIMIT/OFFSET in SQL), grouped as people think of them (new, not yet acknowledged,
acknowledged, withdrawn: tags with counts) and filtered by group and by the London day they
arrived (a GET form). No child data: the same columns as `GET /v1/notifications`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.local_time import LONDON
from services.common.security import Principal
from services.notifier import api
from services.notifier.chain import COLUMNS as CHAIN_COLUMNS
from services.notifier.models import notification_children, notifications
from services.notifier.portal_labels import GROUPS, STATE_GROUPS

PAGE_SIZE = 20
_COLUMNS = ("id", "school_urn", "la_code", "state", "push_at", "sent_at", "viewed_at",
            "acknowledged_at", "created_at", "deadline_at", "la_since", *CHAIN_COLUMNS)


@dataclass(frozen=True)
class Pager:
    """Where a list is: this page of how many, and the address of any other page."""

    page: int
    pages: int
    total: int
    link: Callable[[int], str]
    size: int = PAGE_SIZE

    def href(self, number: int) -> str:
        """The address of page `number`, the filters kept."""
        return self.link(number)

    def numbers(self) -> list[int | None]:
        """The page numbers to offer: first, last and this one's neighbours; None is a gap."""
        wanted = sorted({1, self.pages, *range(max(1, self.page - 1),
                                               min(self.pages, self.page + 1) + 1)})
        shown: list[int | None] = []
        for number in wanted:
            if shown and number - (shown[-1] or 0) > 1:
                shown.append(None)
            shown.append(number)
        return shown

    @property
    def first(self) -> int:
        """The position of this page's first row (1-based), for 'Showing 21 to 40 of 95'."""
        return min(self.total, (self.page - 1) * self.size + 1)

    @property
    def last(self) -> int:
        """The position of this page's last row."""
        return min(self.total, self.page * self.size)


def pager(page: int, total: int, path: str, query: Mapping[str, str],
          size: int = PAGE_SIZE) -> Pager:
    """A pager over `total` rows; its links keep the other query parameters."""
    pages = max(1, math.ceil(total / size))
    kept = {k: v for k, v in query.items() if v and k != "page"}

    def link(number: int) -> str:
        params = kept | ({"page": str(number)} if number > 1 else {})
        return f"{path}?{urlencode(params)}" if params else path

    return Pager(min(max(page, 1), pages), pages, total, link, size)


def page_number(value: str | None) -> int:
    """The `?page=` asked for (1 when absent or not a number)."""
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


@dataclass(frozen=True)
class Filters:
    """The inbox's filter form: a group and the London days the notifications arrived in."""

    group: str = ""
    since: date | None = None
    until: date | None = None
    given: dict[str, str] = field(default_factory=dict)  # as typed, to show back
    errors: list[dict[str, str]] = field(default_factory=list)  # error-summary lines

    @classmethod
    def of(cls, query: Mapping[str, str], groups: Mapping[str, str] = GROUPS) -> Filters:
        """The filters from the query string; what cannot be read is an error, not a 500."""
        given = {k: str(query.get(k, ""))[:20] for k in ("state", "from", "to")}
        errors = []
        group = given["state"] if given["state"] in groups else ""
        if given["state"] and not group:
            errors.append({"href": "#state", "message": "Choose a state from the list"})
        days: list[date | None] = []
        for key, words in (("from", "Received from"), ("to", "Received up to")):
            try:
                days.append(date.fromisoformat(given[key]) if given[key] else None)
            except ValueError:
                days.append(None)
                errors.append({"href": f"#{key}", "message": f"{words} must be a real date"})
        since, until = days
        if since and until and since > until:
            errors.append({"href": "#to", "message": "Received up to must be the same as or "
                           "after received from"})
            until = None
        return cls(group, since, until, given, errors)

    def holds(self, moment: datetime) -> bool:
        """Whether `moment` falls within the filter's London days."""
        day = moment.astimezone(LONDON).date()
        return (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until)

    @property
    def active(self) -> bool:
        """Whether anything is filtered."""
        return bool(self.group or self.since or self.until)

    def where(self) -> list[ColumnElement[bool]]:
        """The date conditions (the group is applied apart, so that the counts ignore it)."""
        n, found = notifications.c, []
        if self.since:
            found.append(n.created_at >= _london_midnight(self.since))
        if self.until:
            found.append(n.created_at < _london_midnight(self.until + timedelta(days=1)))
        return found


@dataclass(frozen=True)
class Inbox:
    """One page of the inbox, the count in each group, and the pager."""

    items: Sequence[dict[str, Any]]
    counts: dict[str, int]
    total: int


def _group() -> ColumnElement[str]:
    states: dict[str, list[str]] = {}
    for state, group in STATE_GROUPS.items():
        states.setdefault(group, []).append(state)
    return case(*((notifications.c.state.in_(s), g) for g, s in states.items()),
                else_="unacknowledged")


async def inbox_page(conn: AsyncConnection, principal: Principal, filters: Filters,
                     page: int, size: int = PAGE_SIZE) -> Inbox:
    """The counts by group (within the dates), and one page of the chosen group, newest
    first: two queries, each bounded."""
    n, group = notifications.c, _group()
    seen = and_(api._visible(principal), *filters.where())
    # grouped over a subquery: a CASE with bound values in both SELECT and GROUP BY would
    # be two different expressions to PostgreSQL
    grouped = select(group.label("grp")).where(seen).subquery()
    counts: dict[str, int] = dict.fromkeys(GROUPS, 0) | {
        str(name): int(count) for name, count in (await conn.execute(
            select(grouped.c.grp, func.count()).group_by(grouped.c.grp))).all()}
    total = counts[filters.group] if filters.group else sum(counts.values())
    children = (select(func.count()).where(notification_children.c.notification_id == n.id)
                .scalar_subquery())
    query = (select(*(n[c] for c in _COLUMNS), children.label("children")).where(seen)
             .order_by(n.created_at.desc(), n.id.desc()))
    if filters.group:
        query = query.where(group == filters.group)
    last = max(1, math.ceil(total / size))
    rows = (await conn.execute(query.limit(size).offset((min(page, last) - 1) * size))).all()
    return Inbox([api._summary(r) for r in rows], counts, total)


def _london_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=LONDON)
