"""The chaos run's data: one LA, its schools and rolls, and incidents whose outcome is known.

Every reported child is one of: a pupil on one roll (a notification to that school, or to
the LA when the school does not take part), a dual-registered pupil (one notification to
each school), a pupil whose name and birth date are on two rolls as different children (the
LA's review queue, no notification) or a child on no roll (a notification to the LA). So the
expected set of (incident, recipient) notifications is exact.
"""

from __future__ import annotations

import csv
import io
import random
import string
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.matcher.batch import run_batch
from services.matcher.roster import CHILDREN_HEADER, ROSTER_HEADER, parse_children, parse_roster

LA = "CHAOS1"
LA_KEY = f"la:{LA}"
POSTCODE = "DY1 2AB"
GIVEN = ("Amelia", "Oliver", "Isla", "Noah", "Ava", "Leo", "Mia", "Arthur", "Ivy", "Oscar",
         "Freya", "Theo", "Lily", "Finley", "Grace", "Jacob", "Rosie", "Harry", "Evie", "Alfie")
OFF_ROLL_GIVEN = ("Zephyrine", "Quillon", "Xanthe", "Ulric", "Yvaine", "Wystan")
KINDS = {"single": 62, "dual": 10, "review": 8, "unmatched": 10, "outsider": 10}


@dataclass(frozen=True)
class Child:
    """A child as the police report it, with where the engine must send it."""

    given: str
    family: str
    born: date
    kind: str
    urns: tuple[str, ...]  # the rolls it is on
    hint: str

    def body(self) -> dict[str, Any]:
        """The child as `POST /v1/incidents` takes it."""
        return {"given_name": self.given, "family_name": self.family,
                "date_of_birth": self.born.isoformat(), "present_at_incident": True,
                "school_hint": {"urn": self.hint}}


@dataclass
class Scenario:
    """Schools, rolls and incidents, with the outcome each incident must have."""

    schools: list[dict[str, Any]] = field(default_factory=list)  # PUT /v1/schools bodies + urn
    rolls: dict[str, list[list[str]]] = field(default_factory=dict)  # urn -> CSV rows
    incidents: list[dict[str, Any]] = field(default_factory=list)
    children: dict[str, list[Child]] = field(default_factory=dict)  # reference -> children
    participating: set[str] = field(default_factory=set)

    def roster_csv(self, urn: str) -> str:
        """A school's roll as the roster upload takes it."""
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([ROSTER_HEADER, *self.rolls[urn]])
        return out.getvalue()

    def recipients(self, reference: str) -> Counter[str]:
        """recipient key -> how many of the incident's children its notification holds."""
        got: Counter[str] = Counter()
        for child in self.children[reference]:
            if child.kind == "unmatched":
                got[LA_KEY] += 1
            for urn in child.urns if child.kind != "review" else ():
                got[f"school:{urn}" if urn in self.participating else LA_KEY] += 1
        return got

    def decisions(self, reference: str) -> list[str]:
        """The engine's decision per child, in order."""
        status = {"review": "review", "unmatched": "unmatched"}
        return [status.get(c.kind, "matched") for c in self.children[reference]]


def build(rng: random.Random, *, incidents: int, schools: int = 6, pupils: int = 50,
          hook_url: str | None = None, hook_secret: str = "") -> Scenario:
    """Schools (the last one not taking part, the first two with webhooks) and incidents."""
    scenario = Scenario()
    urns = [str(rng.randint(100000, 999999)) for _ in range(schools + 1)]
    for i, urn in enumerate(urns):
        hook = {"url": hook_url, "secret": hook_secret} if hook_url and i < 2 else None
        scenario.schools.append({
            "urn": urn, "name": f"Chaos School {i}", "la_code": LA, "postcode": POSTCODE,
            "participates": i < schools, "webhook": hook,
            "contacts": [{"role": "dsl", "name": "Key Adult", "email": f"dsl@{urn}.test"},
                         {"role": "deputy_dsl", "name": "Deputy", "email": f"deputy@{urn}.test"}]})
        scenario.rolls[urn] = []
    scenario.participating = set(urns[:schools])
    families = _families(rng, pupils * (schools + 1) * 2)
    pool: dict[str, list[Child]] = {kind: [] for kind in KINDS}
    for urn in urns:
        for _ in range(pupils):
            child = _child(rng, families, "single" if urn in scenario.participating
                           else "outsider", (urn,))
            pool[child.kind].append(_enrol(scenario, child, "C"))
    for kind, status in (("dual", "MS"), ("review", "CC")):
        for _ in range(pupils // 2):
            child = _child(rng, families, kind, tuple(rng.sample(urns[:schools], 2)))
            pool[kind].append(_enrol(scenario, child, status))
    for _ in range(pupils):
        pool["unmatched"].append(_child(rng, families, "unmatched", ()))
    _incidents(rng, scenario, pool, incidents, urns[0])
    return scenario


def _families(rng: random.Random, n: int) -> list[str]:
    """Distinct made-up family names."""
    seen: set[str] = set()
    while len(seen) < n:
        seen.add("".join(rng.choice(string.ascii_uppercase)) +
                 "".join(rng.choice("aeiou") + rng.choice("lmnrstvkd") for _ in range(3)))
    return sorted(seen)


def _child(rng: random.Random, families: list[str], kind: str, urns: tuple[str, ...]) -> Child:
    # children on no roll share neither given names nor birth years with pupils
    off_roll = kind == "unmatched"
    born = date(2020 if off_roll else 2015, 1, 1) + timedelta(
        days=rng.randrange((1 if off_roll else 5) * 365))
    given = rng.choice(OFF_ROLL_GIVEN if off_roll else GIVEN)
    return Child(given, families.pop(rng.randrange(len(families))), born, kind, urns,
                 urns[0] if urns else "")


def _enrol(scenario: Scenario, child: Child, statuses: str) -> Child:
    for urn, status in zip(child.urns, statuses, strict=True):
        scenario.rolls[urn].append([urn, "", child.given, "", child.family, "",
                                    child.born.isoformat(), "", "", POSTCODE, status, "", ""])
    return child


def _incidents(rng: random.Random, scenario: Scenario, pool: dict[str, list[Child]], n: int,
               fallback_hint: str) -> None:
    token = "".join(rng.choices(string.ascii_uppercase + string.digits, k=6))
    occurred = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    kinds, weights = list(KINDS), list(KINDS.values())
    for i in range(n):
        chosen: dict[str, Child] = {}
        while len(chosen) < rng.choice((1, 1, 1, 2, 2, 3)):
            child = rng.choice(pool[rng.choices(kinds, weights)[0]])
            chosen[child.family] = child
        children = [c if c.hint else _hinted(c, fallback_hint) for c in chosen.values()]
        reference = f"CHAOS-{token}-{i:06d}"
        scenario.children[reference] = children
        scenario.incidents.append({
            "force_code": "WMP", "incident_reference": reference,
            "occurred_at": occurred.isoformat(), "incident_type": "domestic_abuse",
            "summary": "Chaos run.", "children": [c.body() for c in children]})


def _hinted(child: Child, urn: str) -> Child:
    # a child on no roll goes to the LA of the school the officer thought it attends
    return Child(child.given, child.family, child.born, child.kind, child.urns, urn)


def check_with_engine(scenario: Scenario, *, on_date: date) -> None:
    """Precondition: the pure engine decides every reported child as the scenario says."""
    rolls = "\n".join(scenario.roster_csv(urn).split("\n", 1)[1] for urn in scenario.rolls)
    pupils = parse_roster(io.StringIO(",".join(ROSTER_HEADER) + "\n" + rolls))
    rows = [[f"{ref}/{i}", c.given, c.family, c.born.isoformat(), "", "", "", "", c.hint]
            for ref, kids in scenario.children.items() for i, c in enumerate(kids)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([CHILDREN_HEADER, *rows])
    results = run_batch(pupils, parse_children(io.StringIO(out.getvalue())), on_date=on_date)
    got: dict[str, set[str]] = {}
    for ref, status, urn, *_ in results:
        got.setdefault(ref, set()).add(f"{status}:{urn}")
    for ref, kids in scenario.children.items():
        for i, child in enumerate(kids):
            want = {f"matched:{u}" for u in child.urns} if child.kind in (
                "single", "dual", "outsider") else {f"{scenario.decisions(ref)[i]}:"}
            assert got[f"{ref}/{i}"] == want, (child, got[f"{ref}/{i}"])
