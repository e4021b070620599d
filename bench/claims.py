"""What a poll's per-count SQL costs against one array parameter, in one run.

Run (after `scripts/infra.sh up`; the settings from `.daybreak/env`):

    .venv/bin/python -m bench.claims [--polls 600] [--largest 200]

Every consumer claims its poll's event ids (`claim_events`) before it applies them. Written as
a multi-row VALUES (what SQLAlchemy's executemany renders), the statement's text has one
placeholder per id, so each poll size is a statement of its own: asyncpg prepares it (a round
trip and a plan in PostgreSQL) whenever that size was not among its 100 cached ones, and
SQLAlchemy renders the rows each time. `claim_events` sends the ids as one array instead:
one text, prepared once per connection. This bench claims random poll sizes from 1 to
--largest both ways, each in a transaction it rolls back, and prints per poll this process's
CPU, the PostgreSQL backend's CPU (from /proc: run it on the same machine) and the wall time,
with the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.procs import cpu_s
from services.common.db import service_engine
from services.common.idempotency import claim_events
from services.common.models import processed_events
from services.common.settings import Settings

Claim = Callable[..., Awaitable[set[uuid.UUID]]]


async def claim_by_rows(conn: AsyncConnection, *, consumer: str,
                        event_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """The baseline: the same claim as an executemany, a text per number of ids."""
    ids = list(dict.fromkeys(event_ids))
    result = await conn.execute(
        insert(processed_events).on_conflict_do_nothing()
        .returning(processed_events.c.event_id),
        [{"consumer": consumer, "event_id": event_id} for event_id in ids])
    return set(result.scalars())


async def measure(conn: AsyncConnection, pid: int, claim: Claim,
                  sizes: list[int]) -> tuple[float, float, float]:
    """Client CPU, backend CPU and wall milliseconds per poll."""
    cpu, backend, wall = time.process_time(), cpu_s([pid]), time.perf_counter()
    for size in sizes:
        async with conn.begin() as tx:
            await claim(conn, consumer="bench-claims",
                        event_ids=[uuid.uuid4() for _ in range(size)])
            await tx.rollback()
    per = 1000 / len(sizes)
    return ((time.process_time() - cpu) * per, (cpu_s([pid]) - backend) * per,
            (time.perf_counter() - wall) * per)


async def run(polls: int, largest: int) -> None:
    engine = service_engine(Settings(), "matcher", pool_size=1)
    sizes = [random.Random(7).randint(1, largest) for _ in range(polls)]
    ways: dict[str, Claim] = {"multi-row VALUES (baseline)": claim_by_rows,
                              "one array (claim_events)": claim_events}
    try:
        async with engine.connect() as conn:
            pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
            await conn.rollback()
            for claim in ways.values():  # warm: the connection, the caches, the plans
                await measure(conn, pid, claim, sizes[:50])
            costs = {label: await measure(conn, pid, claim, sizes)
                     for label, claim in ways.items()}
    finally:
        await engine.dispose()
    base = next(iter(costs.values()))
    print(f"{polls} polls of 1-{largest} event ids, each claimed and rolled back")
    for label, (client, backend, wall) in costs.items():
        print(f"{label:28s} per poll: this process {client:.2f} ms, PostgreSQL {backend:.2f} ms,"
              f" wall {wall:.2f} ms ({client / base[0]:.2f}x, {backend / base[1]:.2f}x, "
              f"{wall / base[2]:.2f}x the baseline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=600)
    parser.add_argument("--largest", type=int, default=200, help="the largest poll's ids")
    args = parser.parse_args()
    asyncio.run(run(args.polls, args.largest))


if __name__ == "__main__":
    main()
