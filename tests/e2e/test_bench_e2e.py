"""The whole-pipeline benchmark, CI-sized: it must run end to end and print every figure
(the figures themselves are read by people, never asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.stack


def test_bench_e2e_runs_the_pipeline_and_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.e2e", "--incidents", "60", "--pupils", "3000",
         "--clients", "4", "--ingest-workers", "1", "--morning", "20", "--timeout", "240",
         "--idle", "1", "--warmup", "20", "--statements", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # the warm-up's 20 went through first and are in none of the measured figures
    assert "warm-up: 20 incidents through the pipeline" in out
    # --statements: what PostgreSQL executed while measured, the three largest by time
    statements = re.search(r"PostgreSQL while measured: \d+ statements, ([\d.]+) calls", out)
    assert statements is not None and float(statements[1]) > 1, out
    assert len(re.findall(r"rows +[\d.]+ blocks a call  \S", out)) == 3, out
    # a broker just started is compiling: the bench says how much of its CPU that was
    compiling = re.search(r"warm-up: .*, of which its JVM compiling (\d+\.\d\d) ms\)", out)
    assert compiling is not None and float(compiling[1]) > 0, out
    assert "police clients: 60 accepted" in out
    assert re.search(r"ingest \(accepted\) +60 in", out), out
    for line in ("idle for 1 s, share of one core: ingest", "ingest batches (its one worker):",
                 "ingest (accepted)",
                 "matcher (children decided)",
                 "notifier (notifications scheduled)", "end-to-end latency",
                 "sustained end to end: 60 incidents", "CPU per incident",
                 "of kafka's, its JVM compiling:",
                 "pushed while measured:", "morning sample: 20",
                 "20 disclosures in the audit log", "peak memory (VmHWM)", "national year:"):
        assert line in out, out


def test_bench_e2e_at_a_rate_with_two_of_each_compares_with_one_of_each() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.e2e", "--incidents", "30", "--pupils", "3000",
         "--rate", "5", "--matchers", "2", "--notifiers", "2", "--compare-scale",
         "--ingest-workers", "1", "--morning", "0", "--timeout", "240", "--warmup", "10"],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "=== 1 matcher + 1 notifier" in out and "=== 2 matchers + 2 notifiers" in out
    assert "2 matcher (ports" in out and "2 notifier (ports" in out
    for line in ("rate mode: offered 5/s", "latency at 5/s, 202 read → NotificationScheduled",
                 "p95", "backlog at the last 202", "scale comparison",
                 "ratio 2 matchers + 2 notifiers / 1 matcher + 1 notifier: sustained"):
        assert line in out, out
