"""Batch matching of a children file against a roster file (the `daybreak match` command)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import date
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import TextIO, TypeVar

from services.common import csv_safe
from services.matcher.decisions import explanation
from services.matcher.domain import RosterIndex
from services.matcher.index import keep_out_of_collections
from services.matcher.records import Candidate, ChildReport, Decision, Pupil
from services.matcher.roster import RosterError, parse_children, parse_roster

# reason and explanation follow the contract's five columns, so readers by header still work
RESULTS_HEADER = ("child_ref", "status", "urn", "upn", "score", "reason", "explanation")
ResultRow = tuple[str, str, str, str, str, str, str]
CHUNK = 500  # children per task handed to a worker
Record = TypeVar("Record")


def _format_score(score: float) -> str:
    """Render a match weight for the results file."""
    return f"{score:.2f}"


def explain(candidate: Candidate) -> str:
    """The model's explanation in one cell: the prior, then field=level:bits per field."""
    return " ".join(
        f"{item['field']}={item['level']}:{item['bits']:+.2f}" if item["level"]
        else f"{item['field']}:{item['bits']:+.2f}"
        for item in explanation(candidate)
    )


def result_rows(child_ref: str, decision: Decision) -> list[ResultRow]:
    """Turn one decision into RESULTS.csv rows: one per matched school, else one row (with
    the best candidate's score and explanation, when there is one)."""
    if decision.status == "matched":
        return [
            (child_ref, "matched", match.pupil.urn, match.pupil.upn, _format_score(match.score),
             decision.reason, explain(match))
            for match in decision.matches
        ]
    best = decision.candidates[0] if decision.candidates else None
    return [(child_ref, decision.status, "", "", _format_score(best.score) if best else "",
             decision.reason, explain(best) if best else "")]


def _match_serially(index: RosterIndex, children: Sequence[ChildReport], on_date: date
                    ) -> list[ResultRow]:
    """Match children one after another in this process."""
    return [row for child in children
            for row in result_rows(child.child_ref, index.match(child, on_date=on_date))]


# What a forked worker inherits from the parent, copied on write, never pickled: the index,
# the children and the date. A task is only where its chunk starts, so no report is pickled
# and a force's area (one frozenset every report of it shares) stays one object.
_FORKED: list[tuple[RosterIndex, Sequence[ChildReport], date]] = []


def _match_chunk(start: int) -> list[ResultRow]:
    """A worker's share: match one chunk of the inherited children against the index."""
    index, children, on_date = _FORKED[0]
    return _match_serially(index, children[start:start + CHUNK], on_date)


def match_children(index: RosterIndex, children: Sequence[ChildReport], *, on_date: date,
                   workers: int = 1) -> list[ResultRow]:
    """Match every child, across `workers` forked processes when there is enough to share.

    Matching is CPU-bound pure Python, so threads would not help; forked workers share the
    parent's index page by page instead of each building its own. Results keep input order.
    """
    if workers <= 1 or len(children) < 2 * CHUNK or "fork" not in get_all_start_methods():
        return _match_serially(index, children, on_date)
    _FORKED[:] = [(index, children, on_date)]
    try:
        with get_context("fork").Pool(workers) as pool:
            chunks = pool.map(_match_chunk, range(0, len(children), CHUNK))
            return [row for rows in chunks for row in rows]
    finally:
        _FORKED.clear()


def run_batch(
    roster_rows: Iterable[Pupil],
    children_rows: Iterable[ChildReport],
    *,
    on_date: date,
    open_urns: Collection[str] | None = None,
    workers: int = 1,
) -> list[ResultRow]:
    """Match every child against the roster as at a date and return the results rows."""
    index = RosterIndex(roster_rows, open_urns=open_urns)
    keep_out_of_collections()
    return match_children(index, list(children_rows), on_date=on_date, workers=workers)


def write_results(rows: Iterable[ResultRow], stream: TextIO) -> None:
    """Write RESULTS.csv rows under their header."""
    writer = csv_safe.writer(stream, lineterminator="\n")
    writer.writerow(RESULTS_HEADER)
    writer.writerows(rows)


def _load(
    path: str | Path, parse: Callable[[TextIO], list[Record]], label: str
) -> list[Record] | None:
    """Parse one input file; print a one-line error and return None when it is bad."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            return parse(stream)
    except (OSError, UnicodeDecodeError, RosterError) as problem:
        print(f"daybreak match: {label} {path}: {problem}", file=sys.stderr)
        return None


def main_match(
    roster_path: str | Path,
    children_path: str | Path,
    out_path: str | Path,
    *,
    on_date: date | None = None,
    workers: int | None = None,
) -> int:
    """Run `daybreak match` as at on_date (default today) on `workers` processes (default
    one per CPU); 0 on success, 2 on bad input."""
    pupils = _load(roster_path, parse_roster, "roster")
    children = _load(children_path, parse_children, "children") if pupils is not None else None
    if pupils is None or children is None:
        return 2
    rows = run_batch(pupils, children, on_date=on_date or date.today(),
                     workers=workers or os.cpu_count() or 1)
    try:
        with open(out_path, "w", encoding="utf-8", newline="") as stream:
            write_results(rows, stream)
    except OSError as problem:
        print(f"daybreak match: cannot write {out_path}: {problem}", file=sys.stderr)
        return 2
    return 0
