"""The figures' charts as server-rendered SVG: no script, no CDN, nothing but the page itself.

Each chart is an `<svg role="img">` named by its `<title>` and summed up by its `<desc>`; the
page puts the same numbers beside it in a table, which is the chart's text alternative. A
suppressed value draws nothing (a gap in a line, no bar) and is marked "c" on the axis, as the
table says "fewer than 5".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from services.notifier.figures import Cell

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 36, 44  # the plot's margins: legend and axis labels there
INK, GRID, TARGET = "#0b0c0c", "#b1b4b6", "#d4351c"  # GOV.UK black, mid grey, red


@dataclass(frozen=True)
class Series:
    """One line: its name in the legend, a value (or a gap) per week, colour and dash."""

    name: str
    cells: Sequence[Cell]
    colour: str
    dash: str = ""


def _x(i: int, n: int) -> float:
    step = (WIDTH - LEFT - RIGHT) / max(n, 1)
    return LEFT + step * (i + 0.5)


def _y(value: float, top: float) -> float:
    return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (value / top if top else 0)


def _nice_top(highest: float) -> float:
    """A round number at or above the highest value (1, 2 or 5 times a power of ten)."""
    if highest <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(highest))
    return next(float(m * power) for m in (1, 2, 5, 10) if m * power >= highest)


def _frame(chart_id: str, title: str, desc: str, body: list[str], ticks: list[str],
           weeks: Sequence[str], marks: Sequence[bool]) -> Markup:
    """The SVG around a plot: title, description, horizontal grid with its labels, weeks."""
    parts = [f'<svg class="app-chart" id="{chart_id}" role="img" viewBox="0 0 {WIDTH} {HEIGHT}"'
             f' width="100%" aria-labelledby="{chart_id}-title {chart_id}-desc"'
             ' xmlns="http://www.w3.org/2000/svg" font-family="Arial, sans-serif"'
             ' font-size="13">',
             f'<title id="{chart_id}-title">{escape(title)}</title>',
             f'<desc id="{chart_id}-desc">{escape(desc)}</desc>', *ticks, *body]
    for i, week in enumerate(weeks):
        x = _x(i, len(weeks))
        if i % max(1, math.ceil(len(weeks) / 12)) == 0:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" '
                         f'fill="{INK}">{escape(week)}</text>')
        if marks[i]:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM - 4}" text-anchor="middle" '
                         f'fill="{INK}" font-weight="bold">c</text>')
    parts.append(f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
                 f'y2="{HEIGHT - BOTTOM}" stroke="{INK}"/></svg>')
    # every value put in is a number of ours or went through escape() (names, labels)
    return Markup("".join(parts))  # noqa: S704


def _grid(top: float, label: Callable[[float], str]) -> list[str]:
    out = []
    for k in range(5):
        value = top * k / 4
        y = _y(value, top)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                   f'stroke="{GRID}" stroke-width="1"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">'
                   f'{escape(label(value))}</text>')
    return out


def bar_chart(chart_id: str, title: str, weeks: Sequence[str], cells: Sequence[Cell],
              desc: str) -> Markup:
    """Bars, one per week; a suppressed week has none and is marked 'c'."""
    values = [c.value if c.status == "shown" and c.value is not None else 0.0 for c in cells]
    top = _nice_top(max(values, default=0.0))
    width = (WIDTH - LEFT - RIGHT) / max(len(weeks), 1) * 0.6
    bars = [f'<rect x="{_x(i, len(weeks)) - width / 2:.1f}" y="{_y(v, top):.1f}" '
            f'width="{width:.1f}" height="{_y(0, top) - _y(v, top):.1f}" fill="#1d70b8"/>'
            for i, v in enumerate(values) if v > 0]
    return _frame(chart_id, title, desc, bars, _grid(top, "{:.0f}".format), weeks,
                  [c.status == "suppressed" for c in cells])


def line_chart(chart_id: str, title: str, weeks: Sequence[str], series: Sequence[Series],
               desc: str, *, share: bool, target: float | None = None) -> Markup:
    """Lines, one per series, broken where a week is suppressed or has nothing; shares are on
    0-100% with the target as a dashed red line, durations in minutes (or hours, when long)."""
    highest = max((c.value for s in series for c in s.cells
                   if c.status == "shown" and c.value is not None), default=0.0)
    label: Callable[[float], str]
    if share:
        top, label = 1.0, "{:.0%}".format
    elif highest >= 120:
        top, label = _nice_top(highest / 60) * 60, lambda v: f"{v / 60:g} h"
    else:
        top, label = _nice_top(highest), "{:.0f} min".format
    body, keys = [], [(s.name, s.colour, s.dash) for s in series]
    if target is not None:
        y = _y(target, top)
        body.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                    f'stroke="{TARGET}" stroke-width="2" stroke-dasharray="8 4"/>')
        keys.append((f"Target {target:.0%}", TARGET, "8 4"))
    for s in series:
        body += _line(s, len(weeks), top)
    marks = [all(s.cells[i].status == "suppressed" for s in series) for i in range(len(weeks))]
    return _frame(chart_id, title, desc, body + _legend(keys), _grid(top, label), weeks,
                  marks)


def _line(series: Series, n: int, top: float) -> list[str]:
    out, run = [], []
    for i, cell in enumerate([*series.cells, Cell("count", "none")]):
        if cell.status == "shown" and cell.value is not None and i < n:
            run.append((_x(i, n), _y(cell.value, top)))
            continue
        if run:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            dash = f' stroke-dasharray="{series.dash}"' if series.dash else ""
            out.append(f'<polyline points="{points}" fill="none" stroke="{series.colour}" '
                       f'stroke-width="3"{dash}/>')
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{series.colour}"/>'
                    for x, y in run]
            run = []
    return out


def _legend(keys: Sequence[tuple[str, str, str]]) -> list[str]:
    """A key above the plot: each line's stroke and its name."""
    out = []
    for k, (name, colour, dash) in enumerate(keys):
        x = LEFT + k * 180
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" y1="12" x2="{x + 24}" y2="12" stroke="{colour}" '
                   f'stroke-width="3"{dashed}/>')
        out.append(f'<text x="{x + 30}" y="16" fill="{INK}">{escape(name)}</text>')
    return out
