"""Each service's database role reaches its own schema and nothing else (issue: trust
boundaries). Checked against the real catalogue of a migrated database, so a table added
later is covered without naming it here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.common.settings import SERVICES, Settings

pytestmark = pytest.mark.integration


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="module")
async def tables(database: dict[str, str]) -> dict[str, list[str]]:
    """Every table of every service schema, as the owner sees the catalogue."""
    conn = await asyncpg.connect(_plain(database["owner_url"]))
    try:
        rows = await conn.fetch("SELECT schemaname, tablename FROM pg_tables "
                                "WHERE schemaname = ANY($1::text[]) ORDER BY 1, 2",
                                list(SERVICES))
    finally:
        await conn.close()
    found: dict[str, list[str]] = {svc: [] for svc in SERVICES}
    for row in rows:
        found[row["schemaname"]].append(f'{row["schemaname"]}."{row["tablename"]}"')
    return found


@pytest.fixture
async def as_role(settings: Settings) -> AsyncIterator[dict[str, asyncpg.Connection]]:
    """One connection per service role."""
    conns = {svc: await asyncpg.connect(_plain(settings.database_url_for(svc)))
             for svc in SERVICES}
    try:
        yield conns
    finally:
        for conn in conns.values():
            await conn.close()


async def refused(conn: asyncpg.Connection, sql: str) -> bool:
    try:
        async with conn.transaction():
            await conn.execute(sql)
    except asyncpg.InsufficientPrivilegeError:
        return True
    return False


def test_every_service_owns_a_schema_with_tables(tables: dict[str, list[str]]) -> None:
    assert all(tables[svc] for svc in SERVICES), tables
    assert 'notifier."schools"' in tables["notifier"]  # its own copy of the registry
    assert 'identity."users"' in tables["identity"]


@pytest.mark.parametrize("service", SERVICES)
async def test_a_role_reads_its_own_tables_and_no_other_services(
    service: str, tables: dict[str, list[str]], as_role: dict[str, asyncpg.Connection]
) -> None:
    conn = as_role[service]
    for table in tables[service]:
        await conn.fetch(f"SELECT 1 FROM {table} LIMIT 1")
    foreign = [t for other in SERVICES if other != service for t in tables[other]]
    readable = [t for t in foreign if not await refused(conn, f"SELECT 1 FROM {t} LIMIT 1")]
    assert readable == [], f"{service} can read {readable}"


@pytest.mark.parametrize("service", SERVICES)
async def test_a_role_cannot_write_another_services_tables(
    service: str, tables: dict[str, list[str]], as_role: dict[str, asyncpg.Connection]
) -> None:
    conn = as_role[service]
    foreign = [t for other in SERVICES if other != service for t in tables[other]]
    writable = [t for t in foreign if not await refused(conn, f"DELETE FROM {t}")]
    assert writable == [], f"{service} can delete from {writable}"


async def test_the_notifier_cannot_read_the_roll(as_role: dict[str, asyncpg.Connection]) -> None:
    assert await refused(as_role["notifier"], "SELECT given_name FROM matcher.pupils LIMIT 1")


async def test_only_the_audit_role_may_append_to_the_audit_log(
    as_role: dict[str, asyncpg.Connection]
) -> None:
    insert = ("INSERT INTO audit.audit_events (id, at, actor, actor_role, action, channel, "
              "purpose, prev_hash, hash) VALUES (gen_random_uuid(), now(), 'x', 'x', 'x', "
              "'api', 'x', 'x', 'x')")
    for service in SERVICES:
        if service != "audit":
            assert await refused(as_role[service], insert), service
    for change in ("UPDATE audit.audit_events SET purpose = 'x'", "DELETE FROM audit.audit_events"):
        # the audit role itself may only INSERT and SELECT
        assert await refused(as_role["audit"], change), change


async def test_the_retired_shared_role_holds_nothing(database: dict[str, str]) -> None:
    conn = await asyncpg.connect(_plain(database["owner_url"]))
    try:
        granted = await conn.fetch(
            "SELECT table_schema, table_name, privilege_type FROM "
            "information_schema.role_table_grants WHERE grantee = 'daybreak_app'")
        login = await conn.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = "
                                    "'daybreak_app'")
    finally:
        await conn.close()
    assert granted == []
    assert login is False
