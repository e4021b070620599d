"""Database engine, metadata and the unit of work: the caller owns the transaction."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from pydantic_core import to_json
from sqlalchemy import (
    ARRAY,
    MetaData,
    String,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, Insert, insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Update

from services.common.settings import ServiceName, Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Every service has its own outbox and processed-events tables, in its own schema. They are
# declared once under this placeholder, which each service's engine maps to its schema.
OWN_SCHEMA = "own"


def any_of(codes: Sequence[Any], *, of: Any = String) -> Any:
    """`column == any_of(codes)`: one array parameter of `of` (text unless said), since a GIAS
    import names more schools than asyncpg takes arguments (32,767)."""
    return any_(bindparam("codes", list(codes), type_=ARRAY(of)))


def json_recordset(table: Table, names: Sequence[str]) -> Any:
    """The rows `json_rows_param` passes (one JSON array of objects) as a derived table `r`,
    each named column as its type in `table`, in the array's order: to select from, insert
    from or update from, with one execution and one text for a poll's rows."""
    return func.jsonb_to_recordset(cast(bindparam("rows", type_=Text), JSONB)).table_valued(
        *(column(name, table.c[name].type) for name in names)
    ).render_derived(name="r", with_types=True)


def insert_json_rows(table: Table, names: Sequence[str]) -> Insert:
    """`INSERT INTO table (names) SELECT …` of the rows `json_rows_param` passes, in the
    array's order (`json_recordset`): a poll's rows with one execution and one text, where an
    executemany is an execution a row. Unlike `unnest` of an array per column, it also
    carries columns that are arrays or JSON. Add `on_conflict_do_update` with `excluded` as on
    any PostgreSQL insert."""
    rows = json_recordset(table, names)
    return insert(table).from_select(names, select(*(rows.c[name] for name in names)))


def update_json_rows(table: Table, key: str, names: Sequence[str]) -> Update:
    """`UPDATE table SET names FROM` the rows `json_rows_param` passes, each matched on its
    `key` column: one execution for a pass's rows, however many."""
    rows = json_recordset(table, [key, *names])
    return (update(table).where(table.c[key] == rows.c[key])
            .values({name: rows.c[name] for name in names}))


def json_rows_param(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The parameters of a statement over `json_recordset` (`insert_json_rows`,
    `update_json_rows`): the rows as JSON (datetimes in ISO 8601, UUIDs as text, as PostgreSQL
    reads them back into the columns' types). A None is SQL NULL, in a JSON column too (an
    executemany stored JSON `null` there)."""
    return {"rows": to_json(list(rows)).decode()}


class InsecureDatabaseURL(ValueError):
    """A URL to a database on another host that asks for no TLS (message names no secret)."""


# how a URL may ask for no TLS (libpq's sslmode, or asyncpg's ssl): each lets a man in the
# middle read every child's name, so none is taken for a host other than loopback
_PLAINTEXT_MODES = {"disable", "allow", "prefer", "false"}
_TLS_PARAMS = ("ssl", "sslmode")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def tls_connect(
    url: str | URL, *, ca_file: str | None = None, allow_plaintext: bool = False,
) -> tuple[URL, dict[str, object]]:
    """The URL (its ssl/sslmode parameter taken out) and asyncpg's `ssl` connect argument.

    Loopback (or a Unix socket) needs no TLS unless the URL asks for it. Any other host gets
    the equivalent of sslmode=verify-full: a certificate chain verified against `ca_file`
    (the system's CAs when None) and the host name checked, TLS 1.2 at least, whatever
    weaker mode the URL names. A URL asking for no TLS there is refused unless
    `allow_plaintext` (DAYBREAK_DB_INSECURE_ALLOW_PLAINTEXT) says the network is trusted.
    """
    parsed = make_url(url)
    asked = next((str(parsed.query[name]).lower() for name in _TLS_PARAMS
                  if name in parsed.query), None)
    bare = parsed.difference_update_query(_TLS_PARAMS)
    local = parsed.host is None or parsed.host in _LOOPBACK or parsed.host.startswith("/")
    if asked in _PLAINTEXT_MODES or (local and asked is None):
        if not local and not allow_plaintext:
            raise InsecureDatabaseURL(
                f"the database URL for host {parsed.host} asks for ssl={asked}: a database on "
                "another host is reached over TLS only (set DAYBREAK_DB_INSECURE_ALLOW_PLAINTEXT"
                "=true only where the network itself is trusted)")
        return bare, {"ssl": False}  # TLS on loopback costs a third of a request's CPU
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return bare, {"ssl": context}


def make_engine(
    url: str, *, schema: str | None = None, pool_size: int = 20,
    ca_file: str | None = None, allow_plaintext: bool = False, statement_cache: bool = True,
) -> AsyncEngine:
    """An async engine with a bounded pool that fails fast when the database is away.

    `schema` names the service whose outbox and processed events the engine's queries reach;
    TLS as `tls_connect` says (`ca_file`, `allow_plaintext`). Without `statement_cache` no
    prepared statement outlives its transaction (a pooler in transaction mode).
    """
    bare, tls = tls_connect(url, ca_file=ca_file, allow_plaintext=allow_plaintext)
    connect_args: dict[str, object] = {"timeout": 5, "command_timeout": 15, **tls}
    if not statement_cache:
        # asyncpg's cache and SQLAlchemy's, and names no other client of a shared server
        # connection can have taken (asyncpg numbers its statements from 1 per connection)
        connect_args |= {"statement_cache_size": 0, "prepared_statement_cache_size": 0,
                         "prepared_statement_name_func": _unique_statement_name}
    engine = create_async_engine(
        bare,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        # no pre-ping: a dead connection fails one request with 503 and is discarded,
        # instead of every request paying an extra round trip
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_timeout=5,
        connect_args=connect_args,
    )
    if schema is None:
        return engine
    return engine.execution_options(schema_translate_map={OWN_SCHEMA: schema})


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def service_engine(
    settings: Settings, service: ServiceName, *, pool_size: int | None = None
) -> AsyncEngine:
    """An engine as `service`'s own role, its queries reaching `service`'s own schema; a
    service that holds the keystore seals and opens child data through it (sealing.py)."""
    from services.common.sealing import KEY_HOLDERS, ChildSealing, with_sealing

    engine = make_engine(settings.database_url_for(service), schema=service,
                         pool_size=pool_size or settings.db_pool_size,
                         ca_file=settings.db_ca_file,
                         allow_plaintext=settings.db_insecure_allow_plaintext,
                         statement_cache=settings.db_statement_cache)
    if service not in KEY_HOLDERS:
        return engine
    return with_sealing(engine, ChildSealing.from_settings(settings))


class UnitOfWork:
    """One transaction: `async with uow:` begins, `await uow.commit()` commits, else rollback."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._committed = False
        self._after_commit: list[Callable[[], None]] = []

    @property
    def conn(self) -> AsyncConnection:
        """The connection of the open transaction."""
        if self._conn is None:
            raise RuntimeError("unit of work is not open")
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._engine.connect()
        try:
            await self._conn.begin()
        except BaseException:
            await self._conn.close()
            self._conn = None
            raise
        self._committed = False
        self._after_commit = []
        return self

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction has committed (never if it rolls back)."""
        self._after_commit.append(callback)

    async def commit(self) -> None:
        """Commit the transaction, then run the after-commit callbacks."""
        await self.conn.commit()
        self._committed = True
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not self._committed:
                await conn.rollback()
        finally:
            await conn.close()


@asynccontextmanager
async def standalone_uow(
    settings: Settings, service: ServiceName
) -> AsyncIterator[UnitOfWork]:
    """An open unit of work as `service`'s role on a one-connection engine, for the CLI."""
    engine = service_engine(settings, service, pool_size=1)
    try:
        async with UnitOfWork(engine) as uow:
            yield uow
    finally:
        await engine.dispose()
