"""Which failures are the infrastructure's (retry, answer 503) rather than the input's."""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

_TRANSIENT_PG = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.QueryCanceledError,
    # another transaction's locks, never the message's fault: the retry goes through (two
    # notifiers each holding one incident's lock and wanting the other's, for instance)
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
# character_not_in_repertoire, untranslatable_character: NUL in a text or jsonb value
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


class WaitingForFacts(Exception):
    """An event needs a fact another topic has not delivered yet (e.g. a school's registry
    entry): retry it, never dead-letter it, so the child waits rather than goes astray."""


def is_transient(exc: BaseException) -> bool:
    """True when the broker or database is away or overloaded, not when the data is bad."""
    if isinstance(exc, KafkaError | OSError | TimeoutError | PoolTimeoutError | WaitingForFacts):
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        # SQLAlchemy wraps asyncpg's error (e.g. "the database system is starting up" on
        # connect) in its own emulated DBAPI class, keeping the driver's as `.orig`
        driver = getattr(exc.orig, "orig", None)
        return exc.connection_invalidated or isinstance(exc.orig, _TRANSIENT_PG) or isinstance(
            driver, _TRANSIENT_PG)
    return isinstance(exc, _TRANSIENT_PG)


def is_unstorable_text(exc: BaseException) -> bool:
    """True when PostgreSQL refused a character of a submitted value (the input's fault)."""
    return getattr(getattr(exc, "orig", exc), "sqlstate", None) in _UNSTORABLE_TEXT
