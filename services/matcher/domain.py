"""Pure matching rules: which pupil on which school roll a police-reported child is."""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from services.matcher.blocking import BlockingIndex
from services.matcher.comparisons import (
    AGREE,
    DISAGREE,
    FAMILY,
    GIVEN,
    SCHOOL_HINT,
    UPN,
    Profile,
)
from services.matcher.profiles import group_people, pupil_profile, report_profile
from services.matcher.records import Candidate, ChildReport, Decision, Pupil
from services.matcher.scoring import (
    NameBound,
    Scored,
    context_bits,
    estimate_weights,
    pair_levels,
    score_context,
    score_names,
    sibling_overlap,
)
from services.matcher.training import learned_area_share

__all__ = ["Candidate", "ChildReport", "Decision", "Pupil", "RosterIndex", "Thresholds"]


PRIOR = "prior"  # the explanation's entry for the prior: log2(1/N), one pupil among N
IN_AREA, OUT_OF_AREA = "in_area", "out_of_area"  # the prior's level when the area is known

# A report may name any child in the country, so a small roster never makes a match likelier
# than it would be among this many children.
MIN_POPULATION = 10_000
AREA_CACHE = 256  # areas whose priors are kept (a force's area is one frozenset of URNs)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision thresholds, in bits of posterior log-odds that a candidate is the child."""

    # Chosen on bench/match_quality.py's worlds (seed 11, the one EM trains on, and seed 7),
    # for about 0.1% wrong-school auto-matches at most: a lead at 2:1 odds or better
    # against the whole roll (1 bit) and no other pupil within 5 bits (32 times less
    # likely); below -3 bits (1 in 9) nobody is plausible and the child goes to the LA as
    # on no roll, with the candidates' LA. At 0 bits names-and-DOB-only reports gave twice
    # the wrong matches for half a point of recall; at 2 bits, a point less recall for one
    # fewer wrong match in 5,000. The score treats the child as one of N pupils (N at
    # least 10,000), which is conservative where most reported children are on some roll.
    # The area prior (area_priors) moves the prior, not these thresholds: measured on the
    # same worlds it keeps wrong-school matches near 0.1% with names and DOB only (seed 11
    # 0.06 -> 0.07%, seed 7 0.10 -> 0.14%) for 1.1-1.4 points more recall.
    matched: float = 1.0
    review: float = -3.0
    # Wider than the hint's step, so a hint can never tell two close pupils apart.
    margin: float = 5.0
    hint_bonus: float = 1.0
    hint_penalty: float = 1.0
    review_candidates: int = 5


def has_identity_evidence(agreements: Mapping[str, str]) -> bool:
    """Tell whether the given name agrees at all, or the UPN does.

    Brothers and sisters share a family name, an address and (twins) a date of birth, so
    those fields agree together far more often than their weights, multiplied as if
    independent, allow: only the given name tells a pupil from a sibling who is on no roll.
    Every other field is left to the weights.
    """
    return agreements[GIVEN] != DISAGREE or agreements[UPN] == AGREE


def review_reason(score: float, agreements: Mapping[str, str], runner_up: float | None,
                  limits: Thresholds) -> str:
    """Return why the best-ranked person, at a score with these levels, may not be
    auto-matched, or '' when it may; runner_up is the next person's best score, if any."""
    if runner_up is not None and runner_up >= score - limits.margin:
        return "different pupils score too close to tell apart"
    if score < limits.matched:
        return "best candidate scored below the match threshold"
    if not has_identity_evidence(agreements):
        return "the given name does not agree and no UPN does"
    return ""


def _by_score(candidate: Candidate) -> float:
    """Sort key: best score first."""
    return -candidate.score


def _one_per_school(candidates: Iterable[Candidate]) -> tuple[Candidate, ...]:
    """Keep the best-scoring row per school, best first."""
    best: dict[str, Candidate] = {}
    for candidate in candidates:
        kept = best.get(candidate.pupil.urn)
        if kept is None or candidate.score > kept.score:
            best[candidate.pupil.urn] = candidate
    return tuple(sorted(best.values(), key=_by_score))


def _shared_people(people: Sequence[int]) -> dict[int, list[int]]:
    """Map each person with rows at several schools to those rows."""
    counts = Counter(people)
    rows: dict[int, list[int]] = {}
    for row, person in enumerate(people):
        if counts[person] > 1:
            rows.setdefault(person, []).append(row)
    return rows


class _Query(NamedTuple):
    """A normalised report with the prior its candidates start from, in or out of its area."""

    profile: Profile
    hint: str
    area: frozenset[str]
    in_area: float
    out_of_area: float
    names: NameBound  # the most a pupil's names can add


# A row weighed against a report, not yet a Candidate: (score, the context's weighing, the
# names' weighing, the bits taken back for a sibling's shared family name). Most rows weighed
# are never shown, so the Candidate and its explanation are built only for those that are.
_Weighed = tuple[float, Scored, Scored, float]


def area_priors(in_area: int, rows: int, population: int, share: float) -> tuple[float, float]:
    """Return the prior, in bits, of one pupil in the reporting force's area and of one
    outside it.

    Of the prior mass, `share` goes to the `in_area` pupils of the area's schools and the
    rest to the others. A roster smaller than the population stands for a sample of it, in
    the same proportions, so both counts are scaled up to `population`: a small roll never
    makes its pupils likelier than they would be among that many children.
    """
    scale = population / rows
    national = -math.log2(population)
    inside = math.log2(share / (in_area * scale)) if in_area else national
    outside = math.log2((1 - share) / ((rows - in_area) * scale)) if rows > in_area else national
    return inside, outside


class RosterIndex:
    """An in-memory index of school rolls that matches police reports to pupils."""

    def __init__(
        self,
        pupils: Iterable[Pupil],
        *,
        open_urns: Collection[str] | None = None,
        thresholds: Thresholds | None = None,
        area_share: float | None = None,
    ) -> None:
        self._pupils = list(pupils)
        self._profiles = [pupil_profile(pupil) for pupil in self._pupils]
        self._blocking = BlockingIndex()
        for profile in self._profiles:
            self._blocking.add(profile)
        self._blocking.freeze()
        # flat arrays, not lists of Python ints and date tuples (bench/match_memory.py)
        self._people: Sequence[int] = array("I", group_people(self._pupils, self._profiles))
        self._rows_of_person = _shared_people(self._people)
        self._weights = estimate_weights(self._profiles)
        self._population = max(len(self._pupils), MIN_POPULATION)
        self._prior = -math.log2(self._population)
        self._per_school = Counter(pupil.urn for pupil in self._pupils)
        self._area_share = learned_area_share() if area_share is None else area_share
        self._area_priors: dict[frozenset[str], tuple[float, float]] = {}
        self._roll_from = array("i", [(pupil.on_roll_from or date.min).toordinal()
                                      for pupil in self._pupils])
        self._roll_to = array("i", [(pupil.on_roll_to or date.max).toordinal()
                                    for pupil in self._pupils])
        self._open_urns = None if open_urns is None else frozenset(open_urns)
        self._thresholds = thresholds or Thresholds()

    def __len__(self) -> int:
        """Return the number of roster rows."""
        return len(self._pupils)

    def match(self, child: ChildReport, *, on_date: date) -> Decision:
        """Decide which school roll(s), if any, the reported child is on at a date."""
        query = self._query(child)
        day = on_date.toordinal()
        close = self._blocking.close_candidates(query.profile)
        rows = self._eligible_rows(close, day)
        # each row is weighed once per report, though the loose pass below ranks it again
        contexts: dict[int, float] = {}
        weighed: dict[int, _Weighed] = {}
        decision = self._decide(rows, self._score_contenders(rows, query, contexts, weighed),
                                query, day)
        if decision.status == "matched":
            # a pupil clearly ahead on the close keys: a loose key finds only pupils with
            # both names unlike the report's, which cannot come within the margin of it
            return decision
        loose = self._eligible_rows(self._blocking.loose_candidates(query.profile) - close, day)
        if not loose:
            return decision
        rows += loose
        return self._decide(rows, self._score_contenders(rows, query, contexts, weighed),
                            query, day)

    @property
    def u_probabilities(self) -> Mapping[str, Mapping[str, float]]:
        """Return u per field and level as measured on this roster's random pairs."""
        return self._weights.u

    @property
    def area_share(self) -> float | None:
        """Return the share of the prior the reporting force's area gets (None: no area prior)."""
        return self._area_share

    def area_size(self, area_urns: Collection[str]) -> int:
        """Return how many roster rows the schools of an area hold."""
        return sum(self._per_school.get(urn, 0) for urn in area_urns)

    def comparison_levels(self, child: ChildReport, *, on_date: date) -> list[dict[str, str]]:
        """Return each blocked candidate's comparison levels, and whether its school is in the
        reporting force's area when the report says which (the pairs EM learns m from)."""
        profile = report_profile(child)
        return [pair_levels(profile, self._profiles[row], self._weights)
                | ({PRIOR: IN_AREA if self._pupils[row].urn in child.area_urns else OUT_OF_AREA}
                   if child.area_urns else {})
                for row in self._blocking.candidates(profile) if self._eligible(row, on_date)]

    def _query(self, child: ChildReport) -> _Query:
        """Normalise a report and work out the prior its candidates start from."""
        profile = report_profile(child)
        hint = (child.school_urn_hint or "").strip()
        area = child.area_urns
        names = NameBound(profile, self._weights)
        if not area or self._area_share is None or not self._pupils:
            return _Query(profile, hint, frozenset(), self._prior, self._prior, names)
        priors = self._area_priors.get(area)
        if priors is None:
            priors = area_priors(self.area_size(area), len(self._pupils), self._population,
                                 self._area_share)
            if len(self._area_priors) >= AREA_CACHE:
                self._area_priors.clear()
            self._area_priors[area] = priors
        return _Query(profile, hint, area, *priors, names)

    def _eligible(self, row: int, on_date: date) -> bool:
        """Tell whether a row is on roll at the date at a school that is not closed."""
        return bool(self._eligible_rows((row,), on_date.toordinal()))

    def _eligible_rows(self, rows: Iterable[int], day: int) -> list[int]:
        """Return the rows on roll on a day (an ordinal) at a school that is not closed."""
        roll_from, roll_to, open_urns = self._roll_from, self._roll_to, self._open_urns
        if open_urns is None:
            return [row for row in rows if roll_from[row] <= day <= roll_to[row]]
        pupils = self._pupils
        return [row for row in rows
                if roll_from[row] <= day <= roll_to[row] and pupils[row].urn in open_urns]

    def _score_contenders(self, rows: list[int], query: _Query, contexts: dict[int, float],
                          weighed: dict[int, _Weighed]) -> dict[int, _Weighed]:
        """Weigh rows best-first, stopping once none left can reach review or rival the best.

        Names are the costly comparison, so the prior and every other field are weighed
        first and the names are bounded (NameBound): by what an exact match on the reported
        names could add, and per row by which of its names agree exactly. A row skipped
        scores below the cutoff: it could be neither the match, nor a rival within the
        margin, nor plausible. `contexts` and `weighed` keep what one report's passes have
        weighed already.
        """
        for row in rows:
            if row not in contexts:
                contexts[row] = self._context_bits(row, query)
        review, margin, names = self._thresholds.review, self._thresholds.margin, query.names
        profiles = self._profiles
        scored: dict[int, _Weighed] = {}
        best = -math.inf
        for row in sorted(rows, key=lambda row: -contexts[row]):
            context = contexts[row]
            cutoff = max(review, best - margin)
            if names.ceiling + context < cutoff:
                break  # nor can any row after it
            if names.of(profiles[row]) + context < cutoff:
                continue  # agreeing exactly on neither name, it cannot reach the cutoff
            row_weighed = weighed.get(row)
            if row_weighed is None:
                row_weighed = weighed[row] = self._weigh(row, query.profile,
                                                         self._context(row, query))
            scored[row] = row_weighed
            best = max(best, row_weighed[0])
        return scored

    def _context_bits(self, row: int, query: _Query) -> float:
        """Return _context's total alone (the same sum, in the same order): what rows are
        ranked and bounded by before any is weighed."""
        urn = self._pupils[row].urn
        bits = context_bits(query.profile, self._profiles[row], self._weights)
        bits += _prior(urn, query)
        if query.hint:
            bits += self._hint_step(urn, query)
        return bits

    def _context(self, row: int, query: _Query) -> Scored:
        """Weigh the prior and everything but the names; a school hint adds or costs one
        small fixed step."""
        urn = self._pupils[row].urn
        bits, levels, by_field = score_context(query.profile, self._profiles[row], self._weights)
        prior = _prior(urn, query)
        if query.area:
            levels[PRIOR] = IN_AREA if urn in query.area else OUT_OF_AREA
        by_field = {PRIOR: prior} | by_field
        bits += prior
        if query.hint:
            levels[SCHOOL_HINT] = AGREE if query.hint == urn else DISAGREE
            by_field[SCHOOL_HINT] = step = self._hint_step(urn, query)
            bits += step
        return bits, levels, by_field

    def _hint_step(self, urn: str, query: _Query) -> float:
        """Return what a report's school hint adds to a row at this school, or costs it."""
        return (self._thresholds.hint_bonus if query.hint == urn
                else -self._thresholds.hint_penalty)

    def _weigh(self, row: int, profile: Profile, context: Scored) -> _Weighed:
        """Add the names to a row's weighed context."""
        names = score_names(profile, self._profiles[row], self._weights)
        overlap = sibling_overlap(context[1], names[2])
        return context[0] + names[0] - overlap, context, names, overlap

    def _candidate(self, row: int, row_weighed: _Weighed) -> Candidate:
        """Make a weighed row a candidate, with the model's explanation."""
        score, (_, levels, by_field), (_, agreements, by_name), overlap = row_weighed
        if overlap:
            by_name = by_name | {FAMILY: by_name[FAMILY] - overlap}
        return Candidate(self._pupils[row], score, agreements | levels,
                         {PRIOR: by_field[PRIOR]} | by_name | by_field)

    def _score(self, row: int, query: _Query) -> Candidate:
        """Score one row against a report."""
        return self._candidate(row, self._weigh(row, query.profile, self._context(row, query)))

    def _person_rows(
        self, person: int, scored: dict[int, _Weighed], query: _Query, day: int,
    ) -> list[Candidate]:
        """Return every eligible row of one person, scoring rows blocking did not reach."""
        rows = self._rows_of_person.get(person, [person])
        unscored = set(self._eligible_rows((row for row in rows if row not in scored), day))
        return [
            self._candidate(row, scored[row]) if row in scored else self._score(row, query)
            for row in rows
            if row in scored or row in unscored
        ]

    def _decide(self, eligible: Sequence[int], scored: dict[int, _Weighed], query: _Query,
                day: int) -> Decision:
        """Match the best person among the eligible rows weighed, or send the plausible
        ones to review."""
        if not eligible:
            return Decision("unmatched", (), (), "no candidate on roll at an open school")
        people: dict[int, list[int]] = {}
        for row in scored:
            people.setdefault(self._people[row], []).append(row)
        best = {person: max(scored[row][0] for row in rows) for person, rows in people.items()}
        limits = self._thresholds
        ranked = sorted(people.items(), key=lambda item: -best[item[0]])
        plausible = [item for item in ranked if best[item[0]] >= limits.review]
        if not plausible:
            return Decision("unmatched", (), (), "no candidate scored above the review threshold")
        lead_score, lead_agreements = _lead(plausible[0][1], scored)
        runner_up = best[plausible[1][0]] if len(plausible) > 1 else None
        reason = review_reason(lead_score, lead_agreements, runner_up, limits)
        if reason:
            # the rows weighed: one shown to a reviewer is a disclosure, so a row the bound
            # passed over, which could not reach review, is not shown
            shortlist = [self._candidate(row, scored[row])
                         for _, rows in plausible[: limits.review_candidates] for row in rows]
            return Decision("review", (), tuple(sorted(shortlist, key=_by_score)), reason)
        rows = self._person_rows(plausible[0][0], scored, query, day)
        return Decision("matched", _one_per_school(rows), (), "one pupil clearly ahead")


def _prior(urn: str, query: _Query) -> float:
    """Return the prior of a row at this school: in or out of the reporting force's area."""
    return query.in_area if query.area and urn in query.area else query.out_of_area


def _lead(rows: Sequence[int], scored: Mapping[int, _Weighed]) -> tuple[float, dict[str, str]]:
    """Return the best of one person's rows: its score and its levels, names and context."""
    score, (_, context, _), (_, names, _), _ = max((scored[row] for row in rows),
                                                   key=lambda row_weighed: row_weighed[0])
    return score, names | context
