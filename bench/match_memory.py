"""Matcher memory: the RosterIndex's resident size at 100,000 and 1,000,000 pupils, per pupil,
and extrapolated to England's 9.09 million against the 4 GiB target; its build time likewise.

Run: .venv/bin/python -m bench.match_memory [--pupils 100000 1000000] [--seed 7] [--traced-max N]

Each size runs in fresh processes: one generates bench/match_quality.py's synthetic roster and
writes it as a roster CSV (so the generator's own objects never count), then one reads it
back through the roster parser (fresh strings per row, as rows read from PostgreSQL are) and
builds the index, reporting VmRSS growth and the peak (VmHWM); sizes up to --traced-max are
measured again under tracemalloc (Python's own allocations: current and peak). The matcher
holds two indexes while a background rebuild runs (services/matcher/index.py), so its peak is
the served index plus the one being built. The build and the parse are timed (CPU seconds:
the machine may be shared) at each size and
extrapolated linearly (the slope between the sizes) to 9.09M: how long a whole-country rebuild
would leave the served index behind an import, not a pause (matching goes on meanwhile).

Measured (seed 7, 2 shared cores), before and after sharing repeated values (interned text
and dates in Pupil and Profile, one name-forms tuple per name, postings as 1-tuples then
uint32 arrays): 1,000,000 pupils 2,685 -> 1,931 B/pupil (rows 721 -> 370, index 1,964 ->
1,561); slope 2,577 -> 1,822 B/pupil, so 9.09M pupils need 21.8 -> 15.4 GiB serving (5.46x ->
3.86x the 4 GiB target) and twice that while a rebuild holds a second copy. The loose
blocking keys added after (a name pair whatever the birth date, a name with the other's
initial and the birth year, the consonants of each name on the birth date) brought 1M
pupils back to 2,331 B/pupil (rows 372, index 1,959): 18.0 GiB at 9.09M, 4.50x. This design
cannot reach 4 GiB: the target allows about 469 B/pupil serving. What gets there, in order
of yield (figures per pupil, from tracemalloc at 50,000 pupils after the change: rows 718,
profiles 496, blocking 1,175, term-frequency counts 957, person groups and roll dates 129;
bounded caches swell these at a small roll):
1. Blocking postings in CSR form: per index a sorted uint64 key array, uint32 offsets and
   uint32 pupil ids (numpy, searchsorted to look up) instead of dicts of Python containers:
   6.3 keys and 7.4 postings a pupil cost about 90 bytes instead of about 1,100.
2. Columnar profiles: one numpy array per field (dob int32, gender uint8, roll dates int32,
   names, postcode, house and street as uint32 codes into per-field string tables, the
   tables shared by the whole roll): about 60 bytes instead of about 500. The term-frequency
   counts become arrays indexed by those codes (about 20 bytes instead of up to 950; today
   they hold a Counter entry for every UPN and every household tuple).
3. Display fields of Pupil (names as written, address, preferred and former names, UPN)
   stay in PostgreSQL and are read by row id for the few candidates a decision shows: about
   370 bytes a pupil today, 8 for the row id.
4. Partition by region (an LA's rolls, or a force area) with a national directory by UPN
   and date of birth for children reported far from home: a roll import rebuilds one
   partition (about 1/150 of the country), so a rebuild's second copy costs megabytes, not
   the whole index again.
With 1-3, about 200-250 B/pupil: 9.09M pupils in about 2.0-2.2 GiB plus the interpreter,
and with 4 a rebuild adds little, inside the 4 GiB target.

Done since (issue 13): item 1 (services/matcher/blocking.Postings: int64 keys, offsets and
uint32 ids, sorted by numpy and read by bisect), UPN and household term frequencies kept
only for shared values, person ids and roll dates as flat arrays. Measured (seed 7,
--traced-max 0, before -> after): 100,000 pupils 4,146 -> 3,086 B/pupil; 1,000,000 pupils
2,281 -> 1,465 B/pupil (rows 372, index 1,910 -> 1,093; 2,176 -> 1,397 MiB; build 157 ->
104 s); the 100k-1M slope is 1,285 B/pupil, so about 11.3 GiB serving at 9.09M. Part
of that slope is the bounded lru caches of names.py, blocking.py, comparisons.py and
dates.py filling up (tracemalloc at 200,000 pupils: about 1,000 B/pupil, 0.2 GiB, in
caches that stop growing at 65,536-262,144 entries each); what grows with the roll is about
700 B/pupil (rows 372, Profile tuples 144, CSR postings about 170, the rest a few tens), so
9.09M pupils need about 6.4 GiB. Items 3 (rows from PostgreSQL: -360 B/pupil) and 2
(columnar profiles: -100) would bring that to about 2.8 GiB; item 4 keeps a rebuild's
second copy small.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path
from typing import Any

from bench.match_quality import build_world
from services.matcher.domain import RosterIndex
from services.matcher.roster import ROSTER_HEADER, parse_roster

NATIONAL_PUPILS = 9_090_000  # pupils in England's schools, January 2024 census
TARGET_BYTES = 4 * 1024**3
ON_DATE = date(2026, 11, 23)


def _status_kib(field: str) -> int:
    """Return a /proc/self/status figure in KiB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def write_roster(pupils: int, seed: int, path: Path) -> None:
    """Write a synthetic roster of about `pupils` rows as a roster CSV, open URNs beside it."""
    world, _ = build_world(seed, pupils, ON_DATE)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ROSTER_HEADER)
        for pupil in world.pupils:
            writer.writerow("" if value is None else str(value)
                            for value in (getattr(pupil, name) for name in ROSTER_HEADER))
    path.with_suffix(".urns").write_text("\n".join(sorted(world.open_urns)))


def measure(path: Path, *, traced: bool) -> dict[str, Any]:
    """Parse a roster CSV and index it; return rows, memory growth and build time."""
    open_urns = frozenset(path.with_suffix(".urns").read_text().split())
    if traced:
        tracemalloc.start()
    before = _status_kib("VmRSS")
    # CPU seconds, not wall: on a shared machine other work would count in the wall clock
    started = time.process_time()
    with path.open(encoding="utf-8", newline="") as stream:
        roster = parse_roster(stream)
    parsed_s = time.process_time() - started
    parsed = _status_kib("VmRSS")
    traced_rows = tracemalloc.get_traced_memory()[0] if traced else 0
    started = time.process_time()
    index = RosterIndex(roster, open_urns=open_urns)
    built_s = time.process_time() - started
    after = _status_kib("VmRSS")
    figures: dict[str, Any] = {
        "rows": len(index), "build_s": round(built_s, 2), "parse_s": round(parsed_s, 2),
        "rss_rows": (parsed - before) * 1024, "rss_index": (after - parsed) * 1024,
        "rss_total": (after - before) * 1024, "hwm": _status_kib("VmHWM") * 1024,
        "rss_base": before * 1024,
    }
    if traced:
        current, peak = tracemalloc.get_traced_memory()
        figures |= {"traced_rows": traced_rows, "traced_total": current, "traced_peak": peak}
    return figures


def _run_child(*argv: str) -> str:
    """Run this module in a fresh interpreter and return its standard output."""
    command = [sys.executable, "-m", "bench.match_memory", *argv]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def _mib(value: float) -> str:
    return f"{value / 1024**2:,.0f} MiB"


def report(pupils: list[int], seed: int, traced_max: int) -> None:
    """Measure each size in fresh processes and print the figures and the extrapolation."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="match-memory-") as tmp:
        for size in pupils:
            path = Path(tmp) / f"roster-{size}.csv"
            _run_child("--write", str(size), "--seed", str(seed), "--path", str(path))
            figures = json.loads(_run_child("--measure", str(path)))
            if size <= traced_max:
                figures |= {key: value for key, value in json.loads(
                    _run_child("--measure", str(path), "--traced")).items()
                    if key.startswith("traced")}
            results.append(figures)
            rows = figures["rows"]
            print(f"{rows:,} pupils: index built in {figures['build_s']:.1f} s of CPU (rows "
                  f"parsed in {figures['parse_s']:.1f} s); RSS growth "
                  f"{_mib(figures['rss_total'])} ({figures['rss_total'] / rows:,.0f} B/pupil: "
                  f"rows {figures['rss_rows'] / rows:,.0f}, index "
                  f"{figures['rss_index'] / rows:,.0f}); peak RSS {_mib(figures['hwm'])} "
                  f"(interpreter and imports {_mib(figures['rss_base'])})")
            if "traced_total" in figures:
                print(f"  tracemalloc: {figures['traced_total'] / rows:,.0f} B/pupil held "
                      f"(rows {figures['traced_rows'] / rows:,.0f}), peak "
                      f"{figures['traced_peak'] / rows:,.0f} B/pupil")
            os.remove(path)
    _extrapolate(results)


def per_pupil(results: list[dict[str, Any]], key: str) -> float:
    """The growth of a figure per pupil: the slope between the smallest and the largest size
    (what a fixed cost does not distort), or the ratio when only one size ran."""
    first, last = results[0], results[-1]
    if len(results) > 1 and last[key] > first[key] and last["rows"] > first["rows"]:
        return float(last[key] - first[key]) / (last["rows"] - first["rows"])
    return float(last[key]) / last["rows"]


def national(results: list[dict[str, Any]], key: str) -> float:
    """A figure extrapolated linearly from the largest size to every pupil in England."""
    last = results[-1]
    return float(last[key]) + per_pupil(results, key) * (NATIONAL_PUPILS - last["rows"])


def _extrapolate(results: list[dict[str, Any]]) -> None:
    """Print the national figures from the per-pupil slope (two sizes) or the ratio (one)."""
    last = results[-1]
    _extrapolate_time(results)
    slope = per_pupil(results, "rss_total")
    served = last["rss_base"] + slope * NATIONAL_PUPILS
    rebuilding = served + slope * NATIONAL_PUPILS  # the old index serves while the new builds
    print(f"extrapolated to {NATIONAL_PUPILS:,} pupils at {slope:,.0f} B/pupil: "
          f"{served / 1024**3:.1f} GiB serving ({served / TARGET_BYTES:.2f}x the 4 GiB target), "
          f"{rebuilding / 1024**3:.1f} GiB during a rebuild ({rebuilding / TARGET_BYTES:.2f}x); "
          f"the target allows {(TARGET_BYTES - last['rss_base']) / NATIONAL_PUPILS:,.0f} "
          "B/pupil serving")


def _extrapolate_time(results: list[dict[str, Any]]) -> None:
    """Print how long a whole-country rebuild would take on one core of this machine: reading
    the rolls (here from CSV; the matcher streams them from PostgreSQL) and the index build.
    The served index answers meanwhile (services/matcher/index.py): this is how stale an
    import's effect is, not a pause."""
    build, parse = national(results, "build_s"), national(results, "parse_s")
    print(f"extrapolated to {NATIONAL_PUPILS:,} pupils at "
          f"{per_pupil(results, 'build_s') * 1e6:,.1f} µs/pupil to build and "
          f"{per_pupil(results, 'parse_s') * 1e6:,.1f} µs/pupil to read: a whole-country "
          f"rebuild takes {build:,.0f} s to build + {parse:,.0f} s to read = "
          f"{(build + parse) / 60:,.1f} min of one core, while the old index serves")


def main(argv: list[str] | None = None) -> None:
    """Parse flags; the --write and --measure modes are the per-size child processes."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pupils", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--traced-max", type=int, default=100_000,
                        help="also run tracemalloc for sizes up to this (it is slow)")
    parser.add_argument("--write", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write is not None:
        write_roster(args.write, args.seed, args.path)
    elif args.measure is not None:
        print(json.dumps(measure(args.measure, traced=args.traced)))
    else:
        report(sorted(args.pupils), args.seed, args.traced_max)


if __name__ == "__main__":
    main()
