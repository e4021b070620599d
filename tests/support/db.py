"""Create and drop a migrated throwaway database as the owner role."""

from __future__ import annotations

import asyncio
import os
import secrets

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from tests.conftest import REPO


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_test_database() -> dict[str, str]:
    """Create `daybreak_test_<hex>`, migrate it, and return owner and app URLs for it."""
    owner_url = os.environ["DAYBREAK_MIGRATIONS_DATABASE_URL"]
    app_url = os.environ["DAYBREAK_DATABASE_URL"]
    name = f"daybreak_test_{secrets.token_hex(4)}"
    app_role = make_url(app_url).username
    conn = await asyncpg.connect(_plain(owner_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        await conn.execute(f'GRANT CONNECT ON DATABASE "{name}" TO "{app_role}"')
    finally:
        await conn.close()
    test_owner = make_url(owner_url).set(database=name).render_as_string(hide_password=False)
    test_app = make_url(app_url).set(database=name).render_as_string(hide_password=False)
    cfg = Config(str(REPO / "alembic.ini"))
    cfg.attributes["url"] = test_owner
    cfg.attributes["configure_logger"] = False
    await asyncio.to_thread(command.upgrade, cfg, "head")
    return {"name": name, "owner_url": test_owner, "app_url": test_app}


async def drop_test_database(urls: dict[str, str]) -> None:
    """Drop the session's database, whoever is still connected."""
    conn = await asyncpg.connect(_plain(os.environ["DAYBREAK_MIGRATIONS_DATABASE_URL"]))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{urls["name"]}" WITH (FORCE)')
    finally:
        await conn.close()
