"""Benchmark the audit log through the real PostgreSQL path: append, rebuild, verify, prove.

Runs in a throwaway database (created, migrated and dropped here) as the application role:

* append rate, one transaction per event (what the consumer does) with --writers concurrent
  writers contending for the append lock, and in batched transactions of --batch events;
* rebuilding the in-memory tree from the table (service start-up) and signing a head;
* `verify_stored_log` over the whole table (chain, Merkle roots, every signed head);
* inclusion proof latency (row lookup, latest head, proof from the tree cache).

    . .daybreak/env && .venv/bin/python bench/audit.py [--events 20000] [--single 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.audit import proofs
from services.audit.chain import EntryDraft
from services.audit.handlers import AuditDeps
from services.audit.heads import HeadSigner
from services.audit.log import Context, TreeCache, append_entries, append_entry
from services.audit.models import audit_events
from services.audit.queries import verify_stored_log
from services.audit.tree_head import generate_keypair, load_private_key
from services.common.db import make_engine
from tests.support.db import create_test_database, drop_test_database

T0 = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)


def draft(i: int) -> EntryDraft:
    """A plausible disclosure record."""
    return EntryDraft(
        id=uuid.uuid4(), at=T0 + timedelta(milliseconds=i), actor=f"dsl-{i % 997}",
        actor_role="dsl", action="notification.viewed", channel="portal",
        school_urn=str(100_000 + i % 4999), child_key=f"{i:064x}", notification_id=uuid.uuid4(),
        purpose="Operation Encompass safeguarding notification",
    )


async def append_single(engine: AsyncEngine, n: int, writers: int) -> float:
    """n events, one transaction each, from `writers` concurrent tasks; returns seconds."""
    counter = iter(range(n))

    async def writer() -> None:
        for i in counter:
            async with engine.begin() as conn:
                await append_entry(conn, draft(i))

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return time.perf_counter() - started


async def append_batched(
    engine: AsyncEngine, n: int, batch: int, signer: HeadSigner
) -> tuple[float, int]:
    """n events in transactions of `batch`, a head every 5,000; returns seconds and heads."""
    heads, started = 0, time.perf_counter()
    for start in range(0, n, batch):
        async with engine.begin() as conn:
            await append_entries(conn, [(draft(i), Context()) for i in
                                        range(start, min(n, start + batch))])
        if (start + batch) % 5000 < batch:
            heads += await signer.sign_now() is not None
    return time.perf_counter() - started, heads


def pct(samples: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    return statistics.quantiles(samples, n=100)[int(q * 100) - 1] * 1000


async def main(args: argparse.Namespace) -> None:
    urls = await create_test_database()
    engine = make_engine(urls["audit_database_url"], schema="audit",
                         pool_size=max(2, args.writers + 1))
    key = load_private_key(generate_keypair().private_key)
    heads_file = Path(tempfile.mkdtemp()) / "tree-heads.jsonl"
    try:
        seconds = await append_single(engine, args.single, args.writers)
        print(f"append, 1 txn/event, {args.writers} writers: {args.single:>7} events "
              f"{seconds:6.2f} s  {args.single / seconds:8.0f} events/s")
        tree = TreeCache()
        signer = HeadSigner(engine=engine, tree=tree, private_key=key, heads_file=heads_file,
                            clock=lambda: datetime.now(UTC), every=1000, interval_s=60)
        seconds, heads = await append_batched(engine, args.events, args.batch, signer)
        print(f"append, {args.batch} events/txn:          {args.events:>7} events "
              f"{seconds:6.2f} s  {args.events / seconds:8.0f} events/s  ({heads} heads)")
        total = args.single + args.events
        fresh = TreeCache()
        started = time.perf_counter()
        await fresh.refresh(engine)
        print(f"tree rebuild from table (start-up):       {fresh.size:>7} entries "
              f"{time.perf_counter() - started:6.2f} s")
        started = time.perf_counter()
        report = await verify_stored_log(engine, public_key=key.public_key(),
                                         heads_file=heads_file)
        print(f"verify (chain + {report['heads_checked']} heads):            {total:>7} entries "
              f"{time.perf_counter() - started:6.2f} s  ok={report['ok']}")
        await signer.sign_now()
        deps = AuditDeps(engine=engine, tree=tree, signer=signer, clock=lambda: datetime.now(UTC))
        async with engine.connect() as conn:
            ids = list((await conn.execute(select(audit_events.c.id))).scalars())
        samples = []
        for entry_id in random.sample(ids, min(args.proofs, len(ids))):
            started = time.perf_counter()
            await proofs.inclusion(deps, entry_id)
            samples.append(time.perf_counter() - started)
        print(f"inclusion proof ({len(samples)} samples, tree {tree.size}): "
              f"p50 {pct(samples, 0.5):.2f} ms  p99 {pct(samples, 0.99):.2f} ms")
    finally:
        await engine.dispose()
        await drop_test_database(urls)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events appended in batches")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--single", type=int, default=5_000,
                        help="events appended one transaction each")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--proofs", type=int, default=1_000)
    asyncio.run(main(parser.parse_args()))
