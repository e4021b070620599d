"""The matcher's roster watch rebuilds a changed roll once the change has held for one look,
so a burst of imports costs one rebuild after it rather than one per look during it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from services.matcher.index import RosterCache


class Looks(RosterCache):
    """A cache whose database answers `versions`, one per look, then stops the watch; get()
    records the version it would serve."""

    def __init__(self, *versions: int | None) -> None:
        super().__init__(engine=None)  # type: ignore[arg-type]
        self._versions = iter(versions)
        self._seen: int | None = 0
        self.built: list[int | None] = []

    async def _version(self) -> tuple[object, ...]:
        try:
            self._seen = next(self._versions)
        except StopIteration:
            raise asyncio.CancelledError from None
        return (self._seen,)

    async def get(self) -> Any:
        self.built.append(self._seen)
        self._current = SimpleNamespace(version=(self._seen,))  # type: ignore[assignment]
        return self._current


async def watched(*versions: int | None) -> list[int | None]:
    cache = Looks(*versions)
    with pytest.raises(asyncio.CancelledError):
        await cache.watch(0)
    return cache.built


async def test_a_settled_roll_is_built_once_and_then_left_alone() -> None:
    assert await watched(1, 1, 1, 1) == [1]


async def test_no_first_index_is_built_before_any_roll_exists() -> None:
    # an index of no rolls would be served, stale, while the first rolls were rebuilt in;
    # the first child builds the first index instead, waiting for it
    assert await watched(None, None, None) == []


async def test_a_burst_of_imports_is_built_once_after_it_settles() -> None:
    # one import a look for four looks, then quiet: one build, of the last
    assert await watched(1, 2, 3, 4, 5, 5, 5) == [5]


async def test_a_change_that_holds_one_look_is_rebuilt() -> None:
    assert await watched(1, 2, 2, 3, 3) == [2, 3]
