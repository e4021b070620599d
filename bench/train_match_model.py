"""Learn the matcher's m probabilities by EM and write services/matcher/match_model.json.

Run: .venv/bin/python -m bench.train_match_model [--seed 11] [--pupils 100000] [--reports 20000]

The world is generated with another seed than the quality benchmark's (7), so the figures
bench/match_quality.py prints are on reports the model never saw. Half the reports carry
every field and half only names and date of birth, as police systems differ. No truth is
used: EM sees only the comparison levels of the pairs that blocking finds, and whether each
pair's school is in the reporting force's area, from which it learns the area prior's share.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from datetime import date

from bench.match_quality import FULL, NAMES_AND_DOB, build_reports, build_world
from services.matcher.domain import IN_AREA, MIN_POPULATION, PRIOR, RosterIndex
from services.matcher.scoring import M_START
from services.matcher.training import MODEL_FILE, Area, Vector, learn_m


def main(argv: Sequence[str] | None = None) -> None:
    """Generate a world, collect candidate pairs, run EM and write the model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--pupils", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--on-date", default="2026-11-23")
    args = parser.parse_args(argv)
    on_date = date.fromisoformat(args.on_date)
    world, gen = build_world(args.seed, args.pupils, on_date)
    index = RosterIndex(world.pupils, open_urns=world.open_urns)
    groups: list[list[Vector]] = []
    areas: list[Area] = []
    for offset, fields in enumerate((FULL, NAMES_AND_DOB)):
        reports, _ = build_reports(world, gen, args.reports // 2, args.seed + 1 + offset,
                                   fields=fields)
        for report in reports:
            pairs = index.comparison_levels(report, on_date=on_date)
            groups.append([tuple((field, levels[field]) for field in M_START)
                           for levels in pairs])
            areas.append((index.area_size(report.area_urns),
                          [levels.get(PRIOR) == IN_AREA for levels in pairs]))
    started = time.perf_counter()
    m, share, area_share = learn_m(groups, index.u_probabilities, M_START,
                                   population=max(len(index), MIN_POPULATION), areas=areas,
                                   rows=len(index))
    pairs_seen = sum(map(len, groups))
    print(f"EM over {pairs_seen:,} pairs from {len(groups):,} reports in "
          f"{time.perf_counter() - started:.1f} s; share of reports found on a roll {share:.3f}, "
          f"of those at a school in the reporting force's area {area_share:.3f}")
    for field, levels in m.items():
        print(f"  {field:<14} " + "  ".join(f"{lv}={p:.4f}" for lv, p in levels.items()))
    MODEL_FILE.write_text(json.dumps({
        "made_by": "python -m bench.train_match_model " + " ".join(argv or []),
        "seed": args.seed, "pupils": args.pupils, "reports": args.reports,
        "pairs": pairs_seen, "found_share": round(share, 6),
        "area_share": round(area_share or 0.0, 6),
        "m": {field: {lv: float(f"{p:.6g}") for lv, p in levels.items()}
              for field, levels in m.items()},
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {MODEL_FILE}")


if __name__ == "__main__":
    main()
