"""Demo-scale data for the whole-pipeline benchmark: schools, rolls and police incidents.

Built on the synthetic world of `bench/match_quality.py` (UK-frequency names, twins, siblings,
dual registration, movers) so the matcher sees realistic ambiguity, not easy unique names.
"""

from __future__ import annotations

import csv
import io
import json
import random
import secrets
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from bench.match_quality import World, build_reports, build_world
from services.matcher.domain import ChildReport, Pupil
from services.matcher.roster import ROSTER_HEADER

LA_CODES = ("330", "331", "332", "333", "334", "335", "336", "340", "341", "342")
CHILDREN_PER_INCIDENT = ((1, 2, 3), (50, 35, 15))


@dataclass
class Registry:
    """The schools and rolls an admin registers before the morning."""

    world: World
    la_of: dict[str, str]
    rolls: dict[str, list[Pupil]]


def build_registry(pupils: int, on_date: date, seed: int = 11) -> tuple[Registry, Any]:
    """A roster of about `pupils` rows over `pupils // 500` schools, every school open."""
    world, gen = build_world(seed, pupils, on_date)
    la_of = {urn: LA_CODES[i % len(LA_CODES)] for i, urn in enumerate(world.urns)}
    rolls: dict[str, list[Pupil]] = defaultdict(list)
    for pupil in world.pupils:
        rolls[pupil.urn].append(pupil)
    return Registry(world, la_of, dict(rolls)), gen


def roll_csv(rows: list[Pupil]) -> bytes:
    """One school's roll as the `text/csv` the roster endpoint takes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROSTER_HEADER)
    for p in rows:
        writer.writerow((p.urn, p.upn, p.given_name, p.preferred_name, p.family_name,
                         p.former_family_name, p.date_of_birth.isoformat(), p.gender,
                         p.address_line1, p.postcode, p.enrolment_status,
                         p.on_roll_from.isoformat() if p.on_roll_from else "",
                         p.on_roll_to.isoformat() if p.on_roll_to else ""))
    return out.getvalue().encode()


async def register(http: httpx.AsyncClient, admin: dict[str, str], registry: Registry) -> int:
    """PUT each LA and school, POST each roll; returns the pupils imported."""
    for la in sorted(set(registry.la_of.values())):
        (await http.put(f"/v1/local-authorities/{la}", headers=admin, json={
            "name": f"LA {la}", "contacts": [
                {"role": "safeguarding", "name": "LADO desk", "email": f"lado@{la}.la.example"},
                {"role": "review", "name": "Encompass team", "email": f"review@{la}.la.example"},
            ]})).raise_for_status()
    imported = 0
    for urn in registry.world.urns:
        (await http.put(f"/v1/schools/{urn}", headers=admin, json={
            "name": f"School {urn}", "la_code": registry.la_of[urn], "postcode": "DY1 2AB",
            "participates": True, "day_starts_at": "08:45", "webhook": None,
            "contacts": [{"role": "dsl", "name": "Key Adult", "email": f"dsl@{urn}.example"},
                         {"role": "deputy_dsl", "name": "Deputy", "email": f"dep@{urn}.example"}],
        })).raise_for_status()
        rows = registry.rolls.get(urn, [])
        if rows:
            resp = await http.post(f"/v1/schools/{urn}/roster", content=roll_csv(rows),
                                   headers={**admin, "Content-Type": "text/csv"})
            resp.raise_for_status()
            imported += int(resp.json()["rows"])
    return imported


def _child(report: ChildReport) -> dict[str, Any]:
    child: dict[str, Any] = {"given_name": report.given_name,
                             "family_name": report.family_name,
                             "date_of_birth": report.date_of_birth.isoformat(),
                             "present_at_incident": True}
    if report.gender:
        child["gender"] = report.gender
    if report.postcode or report.address_line1:
        child["address"] = {k: v for k, v in (("line1", report.address_line1),
                                              ("postcode", report.postcode)) if v}
    if report.upn:
        child["upn"] = report.upn
    if report.school_urn_hint:
        child["school_hint"] = {"urn": report.school_urn_hint}
    return child


def incident_bodies(registry: Registry, gen: Any, count: int, force: str, *,
                    seed: int = 5) -> Iterator[bytes]:
    """`count` JSON incident bodies, 1-3 children each, as a police system would send them."""
    rng = random.Random(seed)
    sizes = rng.choices(*CHILDREN_PER_INCIDENT, k=count)
    occurred = datetime.now(UTC) - timedelta(hours=2)
    drawn, _ = build_reports(registry.world, gen, sum(sizes) * 11 // 10 + 10, seed)
    # children only: not the generator's unborn siblings, nor its 17-year-olds turning 18
    oldest = occurred.date() - timedelta(days=17 * 365)
    reports = [r for r in drawn if oldest < r.date_of_birth < occurred.date()]
    position = 0
    run = secrets.token_hex(3).upper()
    for number, size in enumerate(sizes):
        children = [_child(r) for r in reports[position:position + size]]
        position += size
        yield json.dumps({
            "force_code": force, "incident_reference": f"{force}-{run}-{number:07d}",
            "occurred_at": occurred.isoformat(), "incident_type": "domestic_abuse",
            "summary": "Benchmark incident; child present in the home.", "children": children,
        }).encode()
