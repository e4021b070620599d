"""`/portal/partnership`: the partnership's figures for its LAs (an LA officer's: their own), per
week as charts with their tables beside them, and `/portal/partnership.csv`: the same figures,
one row per LA, force and week. Read from the figures' read model (services/notifier/
figures_store.py), which holds codes and times only; counts under 5 are suppressed."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import select

from services.common import csv_safe
from services.common.problems import Problem
from services.common.security import Principal
from services.notifier import figures
from services.notifier.figures import ACTION_LABELS, TARGET_SHARE, Cell, Rows
from services.notifier.figures_charts import Series, bar_chart, line_chart
from services.notifier.figures_store import forces_of, load_rows
from services.notifier.models import local_authorities
from services.notifier.portal_labels import duration, long_date
from services.notifier.portal_pages import SecureRoute, ctx_of, page, signed_in, to_sign_in

SCOPE = "figures:read"
_FORCE = re.compile(r"^[A-Z]{2,10}$")
router = APIRouter(route_class=SecureRoute)  # under the portal's router (portal.py)


@dataclass(frozen=True)
class FigureFilters:
    """What the page shows: one of the person's LAs (or all), a force (or all), and weeks."""

    la: str
    force: str
    first: str
    last: str
    given: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, query: Mapping[str, str], now: datetime) -> FigureFilters:
        """The filters asked for; a bad field is reported and its default used instead."""
        given = {k: query.get(k, "").strip()[:20] for k in ("la", "force", "from", "to")}
        first, last = figures.last_weeks(now)
        errors: list[dict[str, str]] = []
        force = given["force"].upper()
        if force and not _FORCE.match(force):
            errors.append({"href": "#force", "message": "Choose a police force from the list"})
            force = ""
        weeks = {}
        for key, default in (("from", first), ("to", last)):
            weeks[key] = figures.parse_week(given[key]) if given[key] else default
            if weeks[key] is None:
                errors.append({"href": f"#{key}", "message": "Enter a week like 2026-W49"})
                weeks[key] = default
        chosen = figures.weeks_from(weeks["from"] or first, weeks["to"] or last)
        if not chosen or len(chosen) > figures.MAX_WEEKS:
            errors.append({"href": "#from", "message": "The first week must be on or before "
                           f"the last, and at most {figures.MAX_WEEKS} weeks before it"})
            weeks = {"from": first, "to": last}
        return cls(given["la"], force, weeks["from"] or first, weeks["to"] or last, given,
                   errors)

    def las(self, principal: Principal) -> list[str]:
        """The LAs whose figures are shown; another LA's are refused (403)."""
        mine = sorted(principal.la_codes)
        if not mine:
            raise Problem(403, "Forbidden", "Your account is tied to no local authority.")
        if self.la and self.la not in mine:
            raise Problem(403, "Forbidden", "These figures are not your partnership's.")
        return [self.la] if self.la else mine

    def query(self) -> str:
        """The filters as a query string (for the CSV link)."""
        wanted = {"la": self.la, "force": self.force, "from": self.first, "to": self.last}
        return urlencode({k: v for k, v in wanted.items() if v})


async def _rows(request: Request) -> tuple[Principal, FigureFilters, list[str], Rows] | None:
    principal = await signed_in(request, SCOPE)
    if principal is None:
        return None
    ctx = ctx_of(request)
    filters = FigureFilters.of(dict(request.query_params), ctx.clock())
    las = filters.las(principal)
    until = figures.week_start(filters.last) + timedelta(days=7)
    async with ctx.engine.connect() as conn:
        rows = await load_rows(conn, la_codes=las, since=figures.week_start(filters.first),
                               until=until, force_code=filters.force or None)
    return principal, filters, las, rows


@router.get("/partnership")
async def partnership(request: Request) -> Response:
    """The figures as charts, each with its table, and the totals over the weeks shown."""
    found = await _rows(request)
    if found is None:
        return to_sign_in()
    principal, filters, las, rows = found
    weeks = figures.weeks_from(filters.first, filters.last)
    weekly = figures.by_week(rows, weeks)
    totals = figures.shown(figures.tally(rows, group=lambda key: "all").get("all",
                                                                           figures.Tally()))
    async with ctx_of(request).engine.connect() as conn:
        names = {r.la_code: r.name for r in await conn.execute(
            select(local_authorities.c.la_code, local_authorities.c.name).where(
                local_authorities.c.la_code.in_(sorted(principal.la_codes))))}
        forces = await forces_of(conn, principal.la_codes)
    return await page(request, "partnership.html", {
        "filters": filters, "las": sorted(principal.la_codes), "la_names": names,
        "forces": sorted({*forces, *([filters.force] if filters.force else [])}),
        "shown_las": las, "weekly": weekly, "totals": totals, "figures": figures.FIGURES,
        "charts": _charts(weekly), "error_title": bool(filters.errors),
        "week_label": week_label, "words": words, "target": TARGET_SHARE,
        "action_labels": {f"actions_{t}": label for t, label in ACTION_LABELS.items()}})


@router.get("/partnership.csv")
async def partnership_csv(request: Request) -> Response:
    """The figures as CSV: one row per LA, force and week; suppressed cells are '[c]'."""
    found = await _rows(request)
    if found is None:
        return to_sign_in()
    _, filters, _, rows = found
    out = io.StringIO()
    writer = csv_safe.writer(out, lineterminator="\r\n")
    writer.writerow(figures.CSV_HEADER)
    writer.writerows(figures.csv_rows(rows, figures.weeks_from(filters.first, filters.last)))
    name = f"daybreak-figures-{filters.first}-to-{filters.last}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def week_label(week: str, *, short: bool = False) -> str:
    """'Week of 30 November 2026' (or '30 Nov' on a chart's axis)."""
    monday = figures.week_monday(week)
    return f"{monday.day} {monday:%b}" if short else f"Week of {long_date(monday)}"


def words(cell: Cell) -> str:
    """A figure as people read it: '12', 'fewer than 5', '83%', '2 hours 10 minutes'."""
    if cell.status == "suppressed":
        return "fewer than 5" if cell.unit == "count" else "not shown (fewer than 5)"
    if cell.status == "none" or cell.value is None:
        return "not applicable"
    if cell.unit == "share":
        return f"{cell.value:.0%}"
    if cell.unit == "minutes":
        return duration(round(cell.value))
    return str(round(cell.value))


def _charts(weekly: list[tuple[str, dict[str, Cell]]]) -> dict[str, Markup]:
    axis = [week_label(w, short=True) for w, _ in weekly]

    def column(name: str) -> list[Cell]:
        return [cells[name] for _, cells in weekly]

    return {
        "notifications": bar_chart(
            "chart-notifications", "Notifications per week", axis, column("notifications"),
            "Bars: notifications each week. Weeks marked c had fewer than 5. The table after "
            "the chart gives the numbers."),
        "in_time": line_chart(
            "chart-in-time", "Told and acknowledged before the school day started", axis, [
                Series("Told", column("pushed_before_school_day_pct"), "#1d70b8"),
                Series("Acknowledged", column("acknowledged_before_school_day_pct"),
                       "#00703c", "6 4")],
            f"Lines: the share of schools' notifications told (solid) and acknowledged "
            f"(dashed) before the school day started, each week, against a target of "
            f"{TARGET_SHARE:.0%}. Gaps are weeks with fewer than 5. The table after the chart "
            "gives the numbers.", share=True, target=TARGET_SHARE),
        "to_acknowledge": line_chart(
            "chart-to-acknowledge", "Time to acknowledge", axis, [
                Series("Median", column("minutes_to_acknowledge_median"), "#1d70b8"),
                Series("90th percentile", column("minutes_to_acknowledge_p90"), "#912b88",
                       "6 4")],
            "Lines: the median (solid) and 90th percentile (dashed) time from a notification "
            "being made to its acknowledgement, each week. Gaps are weeks with fewer than 5 "
            "acknowledged. The table after the chart gives the numbers.", share=False),
    }

