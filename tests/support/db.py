"""Create and drop a migrated throwaway database as the owner role."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.settings import SERVICES
from tests.conftest import REPO
from tests.support.ids import next_tag


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_test_database() -> dict[str, str]:
    """Create `daybreak_test_<hex>`, migrate it, and return the owner's and each service's URL.

    The keys are the settings' names (`owner_url`, `ingest_database_url`, ...), so
    `service_urls(urls)` can be passed straight to `Settings`.
    """
    owner_url = os.environ["DAYBREAK_MIGRATIONS_DATABASE_URL"]
    name = f"daybreak_test_{next_tag()}"
    services = {svc: os.environ[f"DAYBREAK_{svc.upper()}_DATABASE_URL"] for svc in SERVICES}
    conn = await asyncpg.connect(_plain(owner_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        for url in services.values():
            await conn.execute(
                f'GRANT CONNECT ON DATABASE "{name}" TO "{make_url(url).username}"')
    finally:
        await conn.close()
    urls = {"name": name, "owner_url": _on(owner_url, name)}
    urls |= {f"{svc}_database_url": _on(url, name) for svc, url in services.items()}
    cfg = Config(str(REPO / "alembic.ini"))
    cfg.attributes["url"] = urls["owner_url"]
    cfg.attributes["configure_logger"] = False
    await asyncio.to_thread(command.upgrade, cfg, "head")
    return urls


def service_urls(urls: dict[str, str]) -> dict[str, str]:
    """The `<service>_database_url` settings of a test database's URLs."""
    return {key: value for key, value in urls.items() if key.endswith("_database_url")}


def _on(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def drop_test_database(urls: dict[str, str]) -> None:
    """Drop the session's database, whoever is still connected.

    `WITH (FORCE)` ends the owner's own sessions only: PostgreSQL lets no mere owner end a
    service role's. A service engine a test dropped without disposing keeps its connections
    until the garbage collector closes them, so collect, wait, and try again, then name the
    roles still there."""
    conn = await asyncpg.connect(_plain(os.environ["DAYBREAK_MIGRATIONS_DATABASE_URL"]))
    try:
        for attempt in range(20):
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{urls["name"]}" WITH (FORCE)')
                return
            except asyncpg.InsufficientPrivilegeError:
                if attempt == 19:
                    held = await conn.fetch(
                        "SELECT usename, application_name, state FROM pg_stat_activity "
                        "WHERE datname = $1", urls["name"])
                    raise AssertionError(f"still connected to the test database: "
                                         f"{[tuple(r) for r in held]}") from None
                gc.collect()
                await asyncio.sleep(0.5)
    finally:
        await conn.close()


@contextmanager
def _sent(engine: AsyncEngine, *, executemany_only: bool) -> Iterator[list[str]]:
    sent: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
             executemany: bool) -> None:
        if executemany or not executemany_only:
            sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


def executemanys(engine: AsyncEngine) -> AbstractContextManager[list[str]]:
    """The statements the engine sends as an executemany (an execution per parameter set)
    while the block runs."""
    return _sent(engine, executemany_only=True)


def statements(engine: AsyncEngine) -> AbstractContextManager[list[str]]:
    """The SQL statements the engine sends while the block runs (an executemany counts once)."""
    return _sent(engine, executemany_only=False)
