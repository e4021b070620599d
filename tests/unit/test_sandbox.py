"""`daybreak sandbox` refuses a production deployment, and its made-up rolls are valid."""

from __future__ import annotations

import io

import pytest

from services.cli import main as cli_main
from services.matcher.roster import parse_roster
from services.sandbox import CHILDREN, SCHOOLS, roll


def test_the_sandbox_refuses_to_touch_production(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DAYBREAK_ENV", "production")
    assert cli_main(["sandbox"]) != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        "daybreak: sandbox refused: DAYBREAK_ENV is production"]


def test_each_sandbox_roll_imports_and_the_children_cover_each_outcome() -> None:
    for urn, _, _ in SCHOOLS:
        pupils = parse_roster(io.StringIO(roll(urn).decode()))
        assert pupils and {p.urn for p in pupils} == {urn}
    assert [c["expect"] for c in CHILDREN] == ["matched", "review", "unmatched"]
