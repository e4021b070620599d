"""`daybreak demo` explains a late event in one line instead of blaming `make up`."""

from __future__ import annotations

import services.demo
from services.cli import main
from services.demo import DemoTimeout


def test_a_late_event_names_the_topic_and_the_lag_metric(monkeypatch, capsys) -> None:
    def late(settings: object) -> int:
        raise DemoTimeout("no event on matches.v1 for the demo incident within 60 s; watch "
                          "daybreak_consumer_lag")

    monkeypatch.setattr(services.demo, "main", late)
    assert main(["demo"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "no event on matches.v1" in err and "daybreak_consumer_lag" in err
    assert "is `make up` running" not in err
