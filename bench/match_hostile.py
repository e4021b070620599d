"""How much CPU a crafted police report can make the matcher spend, against ordinary reports.

A report's names are at most 100 characters each, but a name of fifty one-letter words, or of
every common name at once, multiplies blocking keys and candidates. This bench builds a roster
index (100,000 pupils by default, bench/match_quality.py's generator), matches ordinary reports
and crafted ones, and prints the time per report of each and the ratio.

    .venv/bin/python -m bench.match_hostile [--pupils 100000] [--reports 2000]
"""

from __future__ import annotations

import argparse
import copy
import string
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from bench.match_quality import build_reports, build_world
from services.matcher.domain import RosterIndex
from services.matcher.index import keep_out_of_collections
from services.matcher.records import ChildReport

ON_DATE = date(2026, 11, 23)


def crafted(base: ChildReport, world_names: Sequence[str]) -> dict[str, ChildReport]:
    """Reports an attacker could send within the schema's limits (100 characters a name)."""
    letters = " ".join(string.ascii_lowercase * 2)[:100]
    common = " ".join(world_names)[:100]
    return {
        "fifty one-letter words in each name": replace(base, given_name=letters,
                                                       family_name=letters),
        "the commonest names, all at once": replace(base, given_name=common, family_name=common),
        "one long word": replace(base, given_name="a" * 100, family_name="b" * 100),
    }


def per_report_ms(index: RosterIndex, reports: Sequence[ChildReport]) -> tuple[float, float]:
    """Mean and worst milliseconds per report."""
    times = []
    for report in reports:
        started = time.perf_counter()
        index.match(report, on_date=ON_DATE)
        times.append((time.perf_counter() - started) * 1000)
    return sum(times) / len(times), max(times)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    world, gen = build_world(args.seed, args.pupils, ON_DATE)
    index = RosterIndex(world.pupils, open_urns=world.open_urns)
    keep_out_of_collections()
    reports, _ = build_reports(world, copy.deepcopy(gen), args.reports, args.seed + 1)
    ordinary, worst = per_report_ms(index, reports)
    print(f"{len(world.pupils):,} pupils; ordinary reports: {ordinary:.2f} ms mean, "
          f"{worst:.1f} ms worst (baseline)")
    counts: dict[str, int] = {}
    for pupil in world.pupils:
        counts[pupil.given_name] = counts.get(pupil.given_name, 0) + 1
    names = sorted(counts, key=counts.__getitem__, reverse=True)[:40]
    for label, report in crafted(reports[0], names).items():
        mean, _ = per_report_ms(index, [report] * 20)
        decision = index.match(report, on_date=ON_DATE)
        print(f"  {label}: {mean:.1f} ms a report, {mean / ordinary:.0f}x the ordinary "
              f"({decision.status}, {len(decision.candidates)} candidates kept)")


if __name__ == "__main__":
    main()
