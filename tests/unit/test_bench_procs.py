"""bench/procs.py: the process tree and CPU the benches read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.procs import cpu_s, family, machine_ticks


def test_a_process_family_holds_its_children_and_their_cpu_counts() -> None:
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", burn + "\ntime.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while child.pid not in family(os.getpid()) or cpu_s([child.pid]) < 0.2:
            assert time.monotonic() < deadline, "the child never showed its CPU"
            time.sleep(0.05)
        assert cpu_s(family(os.getpid())) >= cpu_s([os.getpid()]) + 0.2
    finally:
        child.kill()
        child.wait()
    assert cpu_s([child.pid]) == 0  # gone: counted as nothing, not an error
    assert family(None) == []


def test_the_machine_is_busy_while_this_process_burns_cpu() -> None:
    busy, total = machine_ticks()
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    busy_after, total_after = machine_ticks()
    assert 0 < busy_after - busy <= total_after - total
