"""CSV that a spreadsheet opens as text, never as a formula (CSV injection, OWASP).

Every CSV Daybreak writes goes through `writer`: a cell that begins with `=`, `+`, `-`, `@`, a
tab or a carriage return is prefixed with a single quote, so Excel, LibreOffice and Sheets show
it as text instead of running it. A plain number (`-3.25`) is left alone: a spreadsheet reads it
as a number, never as a formula.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet may safely open it."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(
            value):
        return "'" + value
    return value


class SafeWriter:
    """`csv.writer` whose every cell is neutralised by `safe_cell`."""

    def __init__(self, stream: TextIO, **options: Any) -> None:
        self._writer = csv.writer(stream, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        """Write one row."""
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write many rows."""
        self._writer.writerows([safe_cell(v) for v in row] for row in rows)


def writer(stream: TextIO, **options: Any) -> SafeWriter:
    """A CSV writer over `stream` (options as `csv.writer`'s) that neutralises formulas."""
    return SafeWriter(stream, **options)
