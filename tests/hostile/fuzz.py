"""Bounded, seeded schemathesis runs against an app in-process (its lifespan runs too)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("DAYBREAK_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("DAYBREAK_FUZZ_SEED", "20261121"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
Operation = APIOperation[Any, Any, Any, Any]
Headers = Callable[[Operation], dict[str, str]]


@dataclass
class Report:
    """What a run found: one entry per failing operation and mode, and the statuses seen."""

    failures: list[str] = field(default_factory=list)
    statuses: dict[str, set[int]] = field(default_factory=dict)

    def only(self, refused: set[int]) -> list[str]:
        """Operations that never answered anything but these statuses."""
        return [label for label, seen in self.statuses.items() if seen and seen <= refused]


@contextmanager
def served(app: FastAPI) -> Iterator[schemathesis.BaseSchema]:
    """The app's OpenAPI schema, the app started; its lifespan ends on exit."""
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        shutdown_lifespans()


def fuzz(schema: schemathesis.BaseSchema, headers_for: Headers, *, examples: int = EXAMPLES,
         modes: tuple[GenerationMode, ...] = MODES, skip: tuple[str, ...] = ()) -> Report:
    """Run every operation (but `skip`ped paths) in each mode, checking every response."""
    report = Report()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            report.failures.append(f"an operation the schema cannot describe: {result.err()}")
            continue
        operation = result.ok()
        if operation.path in skip:
            continue
        seen = report.statuses.setdefault(operation.label, set())
        for mode in modes:
            try:
                _run(operation, mode, headers_for(operation), examples, seen)
            except hypothesis.errors.Unsatisfiable:
                continue  # the operation has nothing that can be made invalid
            except (Exception, BaseExceptionGroup) as exc:
                report.failures.append(f"{operation.label} [{mode.value}]: {exc}")
    return report


def _run(operation: Operation, mode: GenerationMode, headers: dict[str, str],
         examples: int, seen: set[int]) -> None:
    @hypothesis.seed(SEED)
    @hypothesis.settings(max_examples=examples, database=None, deadline=None,
                         suppress_health_check=list(HealthCheck),
                         phases=(Phase.explicit, Phase.generate, Phase.shrink))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Any]) -> None:
        seen.add(case.call_and_validate(headers=headers, checks=CHECKS).status_code)

    run()
