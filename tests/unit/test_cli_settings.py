"""A CLI command missing its service's database URL says which variable, and exits 1."""

from __future__ import annotations

import pytest

from services.cli import main


@pytest.mark.parametrize(("argv", "variable"), [
    (["registry", "republish"], "DAYBREAK_MATCHER_DATABASE_URL"),
    (["schools", "import", "/nonexistent.csv"], None),
    (["clients", "create", "--force", "WMP"], "DAYBREAK_IDENTITY_DATABASE_URL"),
], ids=["registry-republish", "schools-import-missing-file", "clients-create"])
def test_a_missing_database_url_is_named_in_one_line(
    argv: list[str], variable: str | None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAYBREAK_ENV", "development")
    for name in ("MATCHER", "IDENTITY"):
        monkeypatch.delenv(f"DAYBREAK_{name}_DATABASE_URL", raising=False)
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("daybreak: ") and "\n" not in err
    if variable:
        assert err == f"daybreak: {variable} is not set"
