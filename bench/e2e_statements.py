"""What PostgreSQL spent its time on while bench.e2e measured (`--statements N`).

The private cluster starts with pg_stat_statements preloaded; its counters are reset when the
measured load starts, and at the end the bench prints every statement's executor time, calls,
rows and buffer pages per incident, the N largest by time. Executor time is wall time inside
PostgreSQL, not its CPU: it leaves out parsing and the commit's WAL flush, and on a machine the
load saturates it holds the time a backend waited for a core (auto_explain showed single-row
inserts of 4-15 ms whose plans ran in well under one) and for row locks (the receipts' per-force
counter: up to 50 ms). So it points at statements to look at; it does not add up to the CPU per
incident the bench prints beside it.
"""

from __future__ import annotations

from tests.support.stack_infra import PG_DB, Postgres

PRELOAD = {"shared_preload_libraries": "pg_stat_statements",
           "pg_stat_statements.track": "top", "pg_stat_statements.track_utility": "on"}


def reset(postgres: Postgres) -> None:
    """Start counting from now."""
    postgres.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements;\n"
                  "SELECT pg_stat_statements_reset();\n", database=PG_DB)


def report(postgres: Postgres, incidents: int, top: int) -> None:
    """Print the statements since `reset`: all of them per incident, then the `top` largest."""
    out = postgres.psql(
        "SELECT calls, total_exec_time, rows, shared_blks_hit + shared_blks_read, "
        "regexp_replace(query, '\\s+', ' ', 'g') "
        "FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' "
        "ORDER BY total_exec_time DESC;\n", database=PG_DB)
    rows = []
    for line in out.splitlines():
        calls, ms, returned, blocks, query = line.split("|", 4)
        rows.append((int(calls), float(ms), int(returned), int(blocks), query))
    calls = sum(r[0] for r in rows)
    ms = sum(r[1] for r in rows)
    print(f"PostgreSQL while measured: {len(rows)} statements, {calls / incidents:.1f} calls and "
          f"{ms / incidents:.3f} ms of executor time per incident; the {top} largest:")
    for n, spent, returned, blocks, query in rows[:top]:
        print(f"  {spent / incidents:6.3f} ms {n / incidents:5.2f} calls "
              f"{returned / max(n, 1):7.1f} rows {blocks / max(n, 1):8.1f} blocks a call  "
              f"{query[:100]}")
