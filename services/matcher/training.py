"""Learning m, the chance of each comparison level for a true match, by expectation-maximisation.

Splink's method, unsupervised: over candidate pairs (police reports against the rolls,
as blocking finds them), alternately estimate each pair's chance of being a match from
the current m, u and match share (E), then re-estimate m and the share from those chances
(M). u stays as measured on random roster pairs: it is what chance agreement looks like,
and EM is poor at telling it apart. A missing field says nothing either way, so it is left
out of both steps. ``bench/train_match_model.py`` runs this and writes match_model.json.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from services.matcher.comparisons import MISSING

MODEL_FILE = Path(__file__).with_name("match_model.json")
Levels = Mapping[str, Mapping[str, float]]
Vector = tuple[tuple[str, str], ...]  # (field, level) for every field a pair was compared on
# No level is rarer for a true match than this: a generated world cannot show every way a
# record goes wrong, and an m of zero would let one slip veto a match for ever.
FLOOR = 0.001


def _log_odds(vector: Vector, m: Levels, u: Levels) -> float:
    """Return the log-likelihood ratio of match over non-match for one comparison vector."""
    return sum(math.log(m[field][level] / u[field][level])
               for field, level in vector if level != MISSING)


def learn_m(
    reports: Sequence[Sequence[Vector]], u: Levels, start: Levels, *, population: int,
    iterations: int = 50, tolerance: float = 1e-6,
) -> tuple[dict[str, dict[str, float]], float]:
    """Return m per field and level learnt by EM, and the share of reports found on a roll.

    Each report is one child, so at most one of its candidate pairs is the match: the E step
    shares one unit of belief among a report's candidates and "none of them" (the child is
    one of ``population`` pupils a priori, as the index assumes). Without that constraint EM
    takes brothers and sisters (same family name, same address) for matches and m collapses.
    """
    m = {field: dict(levels) for field, levels in start.items()}
    found = 0.0
    for _ in range(iterations):
        totals: dict[str, defaultdict[str, float]] = {field: defaultdict(float) for field in m}
        found = 0.0
        for candidates in reports:
            ratios = [math.exp(min(_log_odds(v, m, u), 700.0)) / population for v in candidates]
            belief = 1.0 + sum(ratios)
            for vector, ratio in zip(candidates, ratios, strict=True):
                chance = ratio / belief
                found += chance
                for field, level in vector:
                    if level != MISSING:
                        totals[field][level] += chance
        new_m = {
            field: _floored(_normalised({level: totals[field][level] for level in levels}))
            for field, levels in m.items()
        }
        change = max(abs(new_m[f][lv] - m[f][lv]) for f in m for lv in m[f])
        m = new_m
        if change < tolerance:
            break
    return m, found / max(len(reports), 1)


def _floored(levels: dict[str, float]) -> dict[str, float]:
    """Raise every level to at least FLOOR and scale back to one."""
    return _normalised({level: max(value, FLOOR) for level, value in levels.items()})


def _normalised(levels: dict[str, float]) -> dict[str, float]:
    """Scale a level distribution to sum to one."""
    total = sum(levels.values()) or 1.0
    return {level: value / total for level, value in levels.items()}


@lru_cache(maxsize=1)
def learned_m() -> dict[str, dict[str, float]]:
    """Return the m shipped with the matcher (bench/train_match_model.py wrote it)."""
    model = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    m: dict[str, dict[str, float]] = model["m"]
    return m
