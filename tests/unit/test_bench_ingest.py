"""bench/ingest.py's server pid: a pid file left by a server that has gone names no server
(its CPU would read 0 and the bench would divide by it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.ingest import server_pid


def test_a_live_pid_is_the_server_and_a_gone_one_is_none(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert server_pid(os.getpid()) == os.getpid()
    assert server_pid(gone.pid) is None
    monkeypatch.chdir(tmp_path)
    assert server_pid(None) is None  # no pid file
    (tmp_path / ".daybreak/run").mkdir(parents=True)
    (tmp_path / ".daybreak/run/ingest.pid").write_text(f"{gone.pid}\n")
    assert server_pid(None) is None
    (tmp_path / ".daybreak/run/ingest.pid").write_text(f"{os.getpid()}\n")
    assert server_pid(None) == os.getpid()
