"""Schemathesis's whole run against an app in-process, as `st run --checks all` makes it: the
examples, coverage, fuzzing and stateful phases (links followed), every check, positive and
negative data, seeded. A route refusing schema-valid data by a rule it lists under
`x-daybreak-rules` (services/common/problems.documented_rules), with that rule's status and a
problem+json body, is not a finding; anything else is."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import schemathesis
from fastapi import FastAPI
from schemathesis import GenerationMode
from schemathesis.core.errors import NoLinksFound
from schemathesis.engine import Status, events, from_schema
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.python.asgi import shutdown_lifespans

from schemas.incidents import ADULT_AGE
from services.common.problems import PROBLEM_JSON, RULES_KEY

EXAMPLES = int(os.environ.get("DAYBREAK_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("DAYBREAK_FUZZ_SEED", "20261121"))
STEPS = int(os.environ.get("DAYBREAK_FUZZ_STEPS", "8"))
Route = tuple[str, str]  # (METHOD, /path/{template})
Case = schemathesis.Case[Any]


@dataclass(frozen=True)
class Caller:
    """Who calls: a name for the report, the headers sent, the routes fuzzed as them."""

    name: str
    headers: dict[str, str]
    routes: frozenset[Route]
    force_code: str | None = None  # a police caller's own force


@dataclass
class Report:
    """Every finding of a run, printable, and the statuses each operation answered."""

    findings: list[str] = field(default_factory=list)
    statuses: dict[str, set[int]] = field(default_factory=dict)

    def only(self, refused: set[int]) -> list[str]:
        """Operations that never answered anything but these statuses."""
        return [label for label, seen in self.statuses.items() if seen and seen <= refused]


@contextmanager
def lifespans() -> Iterator[None]:
    """The apps schemathesis starts in-process are shut down on exit."""
    try:
        yield
    finally:
        shutdown_lifespans()


def fuzz(app: FastAPI, caller: Caller, *, examples: int = EXAMPLES, now: datetime) -> Report:
    """Run every phase over the caller's routes of the app; every finding in the report."""
    config = schemathesis.Config.from_dict({
        "seed": SEED, "workers": 1, "continue-on-failure": True, "headers": caller.headers,
        "checks": {"enabled": True},
        "generation": {"mode": "all", "max-examples": examples, "deterministic": True},
        "phases": {"stateful": {"max-steps": STEPS}},
    })
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config).include(
        lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in caller.routes)
    schema.hook("filter_failure")(_unless_documented_refusal)
    schema.hook("map_case")(_teacher(caller, now))
    report = Report()
    for event in from_schema(schema).execute():
        report.findings += _findings(event, caller.name, report.statuses)
    return report


def _findings(event: events.EngineEvent, who: str, statuses: dict[str, set[int]]) -> list[str]:
    if isinstance(event, events.ScenarioFinished):
        for case_id, interaction in event.recorder.interactions.items():
            node = event.recorder.cases.get(case_id)
            if interaction.response is not None and node is not None:
                statuses.setdefault(node.value.operation.label, set()).add(
                    interaction.response.status_code)
        if event.status != Status.FAILURE:
            return []
        return [_describe(event, who, case_id, check.name, check.failure_info)
                for case_id, checks in event.recorder.checks.items() for check in checks
                if check.failure_info is not None]
    if isinstance(event, events.NonFatalError):
        if isinstance(event.value, NoLinksFound):  # none of the caller's routes links on
            return []
        return [f"[{who}] error in {event.label}: {event.value!r}"]
    if isinstance(event, events.FatalError):
        return [f"[{who}] fatal: {event.exception!r}"]
    if isinstance(event, events.EngineFinished):
        return [f"[{who}] {f.title}: {f.message}" for f in event.failures]
    return []


def _describe(event: events.ScenarioFinished, who: str, case_id: str, check: str,
              info: Any) -> str:
    interaction = event.recorder.interactions.get(case_id)
    answer = interaction.response if interaction is not None else None
    got = "" if answer is None else f"\n  → {answer.status_code} {answer.content[:400]!r}"
    return (f"[{who}] {event.phase.value} {event.recorder.label}: {check}: "
            f"{info.failure.title}\n  {info.failure.message}\n  {info.code_sample}{got}")


def _unless_documented_refusal(ctx: Any, failure: Any, case: Case, response: Any) -> bool:
    """Keep every failure but a schema-valid request refused by one of the route's listed
    rules: its listed status, as problem+json."""
    listed = case.operation.definition.raw.get(RULES_KEY)
    documented = (isinstance(failure, RejectedPositiveData) and listed is not None
                  and response.status_code == listed["status"]
                  and PROBLEM_JSON in ",".join(response.headers.get("content-type", [])))
    return not documented


def _teacher(caller: Caller, now: datetime) -> Callable[[Any, Case], Case]:
    """Valid data made to keep the rules JSON Schema cannot say, where the links need the
    route to succeed (a reported incident is what status and withdrawal follow)."""

    def teach(ctx: Any, case: Case) -> Case:
        mode = getattr(getattr(case.meta, "generation", None), "mode", None)
        if (mode == GenerationMode.POSITIVE and case.operation.path == "/v1/incidents"
                and isinstance(case.body, dict)):
            _make_reportable(case.body, caller.force_code, now)
        return case

    return teach


def _make_reportable(body: dict[str, Any], force_code: str | None, now: datetime) -> None:
    """The caller's force, a time in the past, and children under 18 on that day."""
    if force_code is not None:
        body["force_code"] = force_code
    body["occurred_at"] = now.isoformat()
    for age, child in enumerate(body.get("children") or []):
        if isinstance(child, dict) and isinstance(child.get("date_of_birth"), str):
            child["date_of_birth"] = date(now.year - age % ADULT_AGE, 1, 1).isoformat()
