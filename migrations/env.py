"""Alembic environment: async engine, URL from the environment, app-role grants."""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import services.audit.models
import services.common.models
import services.identity.models
import services.ingest.models
import services.matcher.models
import services.notifier.models  # noqa: F401
from services.common.db import metadata, tls_connect

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = metadata


def _url() -> str:
    url = config.attributes.get("url") or os.environ.get("DAYBREAK_MIGRATIONS_DATABASE_URL")
    if not url:
        raise SystemExit("set DAYBREAK_MIGRATIONS_DATABASE_URL (the owner role) to migrate")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url, tls = tls_connect(_url(), ca_file=os.environ.get("DAYBREAK_DB_CA_FILE") or None,
                           allow_plaintext=os.environ.get(
                               "DAYBREAK_DB_INSECURE_ALLOW_PLAINTEXT", "").lower() == "true")
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=tls)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
