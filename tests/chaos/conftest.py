"""The chaos tier: its own stack (PostgreSQL, Kafka, SMTP, services), run after everything else."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.stack import SERVICES, Stack


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether a chaos test failed, so its stack's logs can be kept."""
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A whole deployment of its own (or only the services named by indirect parametrisation);
    its logs are kept (and named) if the test fails or DAYBREAK_CHAOS_KEEP is set."""
    started = Stack.up(getattr(request, "param", SERVICES))
    try:
        yield started
    finally:
        keep = request.node.stash.get(FAILED, False) or bool(os.environ.get("DAYBREAK_CHAOS_KEEP"))
        kept = started.close(keep_logs=keep)
        if kept is not None:
            print(f"\nchaos stack logs kept in {kept}")
