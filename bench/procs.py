"""CPU read from /proc: a process tree's, and the whole machine's busy share."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def family(pid: int | None) -> list[int]:
    """A process and its descendants (uvicorn workers, PostgreSQL backends)."""
    if pid is None:
        return []
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = task.read_text().split()
        except OSError:
            continue  # the thread ended while we looked
        for child in children:
            found.extend(family(int(child)))
    return found


def _stat(path: Path) -> tuple[str, int] | None:
    """A /proc `stat` file's name (a process's, or a thread's) and its CPU ticks (user +
    system); None when it is gone or unreadable."""
    try:
        name, _, rest = path.read_text().partition("(")[2].rpartition(")")
        fields = rest.split()
        return name, int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return None


def cpu_s(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) these processes used so far; one that is gone counts 0."""
    stats = (_stat(Path(f"/proc/{pid}/stat")) for pid in pids)
    return sum(ticks for _, ticks in filter(None, stats)) / os.sysconf("SC_CLK_TCK")


def compiling_s(pids: Iterable[int]) -> float:
    """CPU seconds a JVM's JIT compiler threads (`C1 CompilerThread0`, `C2 CompilerThre...`:
    Linux keeps 15 characters of a thread's name) used so far in these processes: what a
    fresh broker spends compiling its hot code, and one that has run for a while no longer
    does. A thread that ended while we looked counts 0."""
    stats = (_stat(path) for pid in pids for path in Path(f"/proc/{pid}/task").glob("*/stat"))
    return sum(ticks for name, ticks in filter(None, stats)
               if "CompilerThre" in name) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU so far, from /proc/stat's first line."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)
