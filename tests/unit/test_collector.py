"""The cyclic collector is settled once a service has started (services/common/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.app import create_app
from services.common.context import AppContext
from services.common.settings import Settings


@pytest.fixture
def pristine_collector() -> Iterator[None]:
    """Python's own collector settings before the test and after it."""
    before = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("pristine_collector")
async def test_a_started_service_freezes_its_startup_objects_and_collects_less_often() -> None:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    ctx = AppContext(settings=Settings(gc_young_threshold=12_345), engine=engine,
                     registry=CollectorRegistry())
    app = create_app(title="t", service="t", ctx=ctx)
    gc.set_threshold(700, 10, 10)
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_threshold() == (12_345, 10, 10)
        assert gc.get_freeze_count() > 0  # the app, its routes and models among them
    await engine.dispose()


def test_the_threshold_is_bounded() -> None:
    with pytest.raises(ValueError, match="gc_young_threshold"):
        Settings(gc_young_threshold=10)
