"""Every CSV cell a spreadsheet could run as a formula is made text (services/common/csv_safe)."""

from __future__ import annotations

import io

import pytest

from services.common.csv_safe import safe_cell, writer


@pytest.mark.parametrize(("cell", "written"), [
    ("=1+1", "'=1+1"), ("+1+1", "'+1+1"), ("-1+1", "'-1+1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("-", "'-"),
    ("-3.25", "-3.25"), ("+7", "+7"), ("-1e5", "-1e5"), ("Amelia", "Amelia"), ("", ""),
    ("a=b", "a=b"), (3.5, 3.5), (None, None),
])
def test_cells(cell: object, written: object) -> None:
    assert safe_cell(cell) == written


def test_the_writer_neutralises_every_cell_of_every_row() -> None:
    out = io.StringIO()
    w = writer(out, lineterminator="\n")
    w.writerow(["child_ref", "score"])
    w.writerows([["=HYPERLINK(1)", -2.5], ["c2", "-2.5"]])
    assert out.getvalue() == "child_ref,score\n'=HYPERLINK(1),-2.5\nc2,-2.5\n"
