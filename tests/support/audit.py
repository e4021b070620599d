"""What someone holding the owner role can still do to the audit log."""

from __future__ import annotations

import asyncpg


async def owner(urls: dict[str, str]) -> asyncpg.Connection:
    """A plain asyncpg connection to the test database as its owner."""
    return await asyncpg.connect(urls["owner_url"].replace("+asyncpg", "", 1))


async def tamper(urls: dict[str, str], sql: str, *args: object) -> None:
    """What someone holding the owner role can still do: switch the trigger off."""
    conn = await owner(urls)
    try:
        async with conn.transaction():
            await conn.execute(
                "ALTER TABLE audit.audit_events DISABLE TRIGGER audit_events_append_only")
            await conn.execute(sql, *args)
            await conn.execute(
                "ALTER TABLE audit.audit_events ENABLE TRIGGER audit_events_append_only")
    finally:
        await conn.close()
