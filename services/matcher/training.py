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
from typing import Any

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


Area = tuple[int, Sequence[bool]]  # a report's area size (roster rows) and, per pair, in it?


def learn_m(
    reports: Sequence[Sequence[Vector]], u: Levels, start: Levels, *, population: int,
    iterations: int = 50, tolerance: float = 1e-6,
    areas: Sequence[Area] | None = None, rows: int = 0, area_start: float = 0.5,
) -> tuple[dict[str, dict[str, float]], float, float | None]:
    """Return m per field and level learnt by EM, the share of reports found on a roll and,
    given `areas`, the share of the found ones whose school is in the reporting force's area.

    Each report is one child, so at most one of its candidate pairs is the match: the E step
    shares one unit of belief among a report's candidates and "none of them" (the child is
    one of ``population`` pupils a priori, as the index assumes). Without that constraint EM
    takes brothers and sisters (same family name, same address) for matches and m collapses.

    With `areas` (one per report: how many of the ``rows`` roster rows its force's area
    holds, and which of its candidates are among them) the prior is the index's
    (services/matcher/domain.py area_priors): the area share s spread over the area's pupils,
    1 - s over the rest; the M step re-estimates s as the expected share of matches in area.
    """
    m = {field: dict(levels) for field, levels in start.items()}
    share = area_start if areas is not None else None
    # a few thousand distinct vectors recur across the pairs: weigh each once per step
    distinct: dict[Vector, int] = {}
    coded = [[distinct.setdefault(vector, len(distinct)) for vector in candidates]
             for candidates in reports]
    vectors = list(distinct)
    found = 0.0
    for _ in range(iterations):
        odds = [math.exp(min(_log_odds(vector, m, u), 700.0)) for vector in vectors]
        chances = [0.0] * len(vectors)
        inside = 0.0
        for number, candidates in enumerate(coded):
            priors = _priors(len(candidates), population, rows, share,
                             None if areas is None else areas[number])
            ratios = [odds[code] * prior for code, prior in zip(candidates, priors, strict=True)]
            belief = 1.0 + sum(ratios)
            flags = areas[number][1] if areas is not None else ()
            for position, (code, ratio) in enumerate(zip(candidates, ratios, strict=True)):
                chance = ratio / belief
                chances[code] += chance
                if flags and flags[position]:
                    inside += chance
        found = math.fsum(chances)
        totals: dict[str, defaultdict[str, float]] = {field: defaultdict(float) for field in m}
        for vector, chance in zip(vectors, chances, strict=True):
            for field, level in vector:
                if level != MISSING:
                    totals[field][level] += chance
        new_m = {
            field: _floored(_normalised({level: totals[field][level] for level in levels}))
            for field, levels in m.items()
        }
        change = max(abs(new_m[f][lv] - m[f][lv]) for f in m for lv in m[f])
        if share is not None:
            new_share = min(max(inside / max(found, 1e-9), FLOOR), 1 - FLOOR)
            change = max(change, abs(new_share - share))
            share = new_share
        m = new_m
        if change < tolerance:
            break
    return m, found / max(len(reports), 1), share


def _priors(count: int, population: int, rows: int, share: float | None,
            area: Area | None) -> list[float]:
    """Return each candidate's prior chance of being the reported child."""
    if share is None or area is None:
        return [1.0 / population] * count
    size, inside = area
    scale = population / max(rows, 1)
    within = share / (max(size, 1) * scale)
    outside = (1 - share) / (max(rows - size, 1) * scale)
    return [within if flag else outside for flag in inside]


def _floored(levels: dict[str, float]) -> dict[str, float]:
    """Raise every level to at least FLOOR and scale back to one."""
    return _normalised({level: max(value, FLOOR) for level, value in levels.items()})


def _normalised(levels: dict[str, float]) -> dict[str, float]:
    """Scale a level distribution to sum to one."""
    total = sum(levels.values()) or 1.0
    return {level: value / total for level, value in levels.items()}


@lru_cache(maxsize=1)
def _model() -> dict[str, Any]:
    """Return the model shipped with the matcher (bench/train_match_model.py wrote it)."""
    model: dict[str, Any] = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    return model


def learned_m() -> dict[str, dict[str, float]]:
    """Return the m shipped with the matcher."""
    m: dict[str, dict[str, float]] = _model()["m"]
    return m


def learned_area_share() -> float | None:
    """Return the share of reported children on a roll in the reporting force's area, as EM
    learnt it (None when the shipped model has none: then the prior is national)."""
    share = _model().get("area_share")
    return None if share is None else float(share)
