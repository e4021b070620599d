"""The whole pipeline as its users drive it, measured: police clients → ingest → Kafka →
matcher → notifier scheduling → (a morning sample) e-mail → audit.

    .venv/bin/python -m bench.e2e [--incidents 100000] [--pupils 100000] [--clients 32]
                                  [--ingest-workers 1] [--morning 5000] [--rate N]
                                  [--matchers 2] [--notifiers 2] [--compare-scale]
                                  [--warmup 10000] [--seal on|off] [--statements N]
                                  [--set DAYBREAK_X=VALUE ...]

It starts its own PostgreSQL, Kafka broker and the five services (tests/support/stack.py), so it
never touches the development database or topics. An admin registers the schools and rolls
over the registry API; a police client posts N incidents (1-3 children each, drawn from the
synthetic roster with realistic misspellings, date slips and movers) over keep-alive HTTP,
retrying refusals with the same body as a real client would. It prints per-stage throughput,
end-to-end latency (accepted → notification scheduled), peak memory per process, and the time
the measured rate implies for a national year of 1.46 million incidents (target: ≤ 20 min).
Every figure is of a warm pipeline: --warmup incidents go through it first and are left out (a
fresh broker's JVM compiles its hot code for its first minute or so under load; the bench prints
how much of the broker's CPU its compiler threads still took while measured, and --warmup 0
measures from cold).

Without --rate the clients are a closed loop (each posts its next incident once answered):
that measures capacity. --rate N is an open loop (bench/e2e_load.py): an incident every 1/N s
on the clock, answered or not, and it prints, at that rate, the latency from each 202 to its
NotificationScheduled on notifications.v1 (p50/p95/p99/max), the achieved rate and the backlog
left at the end, and whether the pipeline kept up. --matchers/--notifiers start more copies
in the same consumer groups on free ports (bench/e2e_scale.py); --compare-scale first runs one
of each on a fresh stack, then the copies on another, and prints the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import e2e_statements
from bench.e2e_data import LA_CODES, Registry, build_registry, incident_bodies, register
from bench.e2e_load import (
    Load,
    Poster,
    ScheduledWatch,
    percentile,
    post_closed_loop,
    post_open_loop,
)
from bench.e2e_scale import RateFigures, compare, scale_out
from bench.procs import compiling_s, cpu_s, family
from schemas import topics
from services.common.db import make_engine, standalone_uow
from services.common.local_time import LONDON
from services.common.settings import Settings
from services.identity.accounts import create_client
from services.ingest.service import incident_id_for
from services.notifier.settings import NotifierSettings
from tests.support.incidents import register_force
from tests.support.stack import Stack
from tests.support.tokens import bearer, person

NATIONAL_YEAR = 1_460_000
TARGET_MINUTES = 20
FORCE = "BNCH"


async def police_token(settings: Settings, ingest_url: str) -> Any:
    """A police client for force BNCH (registered, its default LA the first of the registry's)
    and a function that fetches it a fresh token."""
    await register_force(settings, FORCE, LA_CODES[0])
    async with standalone_uow(settings, "identity") as uow:
        client = await create_client(uow.conn, force_code=FORCE)
        await uow.commit()

    async def fetch() -> str:
        async with httpx.AsyncClient(base_url=ingest_url, timeout=30) as http:
            resp = await http.post("/v1/token", data={"grant_type": "client_credentials"},
                                   auth=(client.client_id, client.client_secret))
            resp.raise_for_status()
            return str(resp.json()["access_token"])

    return fetch


async def scalar_row(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    """One row of a measuring query."""
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).one()


async def pipeline_counts(engine: AsyncEngine) -> tuple[int, int, int]:
    """Children decided, decisions a notifier must take in (all but reviews), taken in."""
    decided, notifiable, consumed = await scalar_row(engine, """
        SELECT (SELECT count(*) FROM matcher.match_decisions),
               (SELECT count(*) FROM matcher.match_decisions WHERE status <> 'review'),
               (SELECT count(*) FROM notifier.processed_events WHERE consumer = 'notifier')""")
    return int(decided), int(notifiable), int(consumed)


async def backlog(engine: AsyncEngine, children: int) -> int:
    """Children still in the pipeline: not decided yet, or decided and not yet taken in."""
    decided, notifiable, consumed = await pipeline_counts(engine)
    return max(children - decided, 0) + max(notifiable - consumed, 0)


async def wait_drained(engine: AsyncEngine, children: int, *, timeout_s: float) -> float:
    """Wait until every child is decided and every decision reached the notifier (`children`:
    all the run posted, warm-up included)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if not await backlog(engine, children):
            return time.perf_counter() - started
        await asyncio.sleep(0.25)
    raise TimeoutError(f"pipeline not drained after {timeout_s:.0f} s")


# each over the measured load only: the warm-up drained before `since`
STAGES_SQL = {
    "ingest (accepted)": "SELECT count(*), min(received_at), max(received_at) "
                         "FROM ingest.incidents WHERE received_at >= :since",
    "matcher (children decided)": "SELECT count(*), min(decided_at), max(decided_at) "
                                  "FROM matcher.match_decisions WHERE decided_at >= :since",
    "notifier (notifications scheduled)":
        "SELECT count(*), min(created_at), max(created_at) FROM notifier.notifications "
        "WHERE created_at >= :since",
}
LATENCY_SQL = """
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s), percentile_cont(0.99)
           WITHIN GROUP (ORDER BY s), max(s), count(*)
    FROM (SELECT extract(epoch FROM max(n.created_at) - i.received_at) AS s
          FROM ingest.incidents i JOIN notifier.notifications n USING (incident_id)
          WHERE i.received_at >= :since
          GROUP BY i.incident_id, i.received_at) per_incident"""


async def report_pipeline(engine: AsyncEngine, load: Load, since: datetime) -> float:
    """Print stage rates and latency of what was posted from `since`; return the sustained
    end-to-end incidents per second."""
    ok = load.codes.get(202, 0) + load.codes.get(200, 0)
    wall = load.finished - load.started
    lat = sorted(load.latencies)
    print(f"police clients: {ok} accepted in {wall:.1f} s = {ok / wall:,.0f}/s; "
          f"HTTP p50 {percentile(lat, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(lat, 0.99) * 1000:.0f} ms; retries {load.retries}; "
          f"codes {dict(sorted(load.codes.items()))}")
    first_in = None
    last_out = None
    for stage, sql in STAGES_SQL.items():
        count, first, last = await scalar_row(engine, sql, since=since)
        seconds = max((last - first).total_seconds(), 1e-9)
        first_in = first_in or first
        last_out = last
        print(f"  {stage:<38} {count:>9,} in {seconds:7.1f} s = {count / seconds:8,.0f}/s")
    statuses = await _statuses(engine, since)
    print(f"  match outcomes: {statuses}")
    p50, p99, worst, incidents = await scalar_row(engine, LATENCY_SQL, since=since)
    print(f"end-to-end latency, received_at → created_at in the tables ({incidents:,} "
          f"incidents with a notification): p50 {p50:.2f} s, p99 {p99:.2f} s, max {worst:.2f} s")
    total = (await scalar_row(engine, "SELECT count(*) FROM ingest.incidents "
                              "WHERE received_at >= :since", since=since))[0]
    span = (last_out - first_in).total_seconds()
    rate = total / span
    print(f"sustained end to end: {total:,} incidents from first accepted to last scheduled "
          f"in {span:.1f} s = {rate:,.0f} incidents/s")
    return rate


async def _statuses(engine: AsyncEngine, since: datetime) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(
            "SELECT status, count(*) FROM matcher.match_decisions WHERE decided_at >= :since "
            "GROUP BY status ORDER BY status"), {"since": since})
        return {row[0]: row[1] for row in rows}


async def morning(engine: AsyncEngine, settings: Settings, notifier_url: str, sample: int,
                  sent_mail: Any, *, timeout_s: float) -> None:
    """Make `sample` notifications due now; time the dispatcher's pushes, then the DSLs
    opening each one in the API (an audited disclosure) and the audit log taking them in.

    The services run on the real clock: during a school-day morning they push at once, so
    part of the sample (or all of it) may already have been pushed live; that is reported."""
    async with engine.begin() as conn:
        chosen = (await conn.execute(text("""
            SELECT id, school_urn, state = 'scheduled' AS waiting FROM notifier.notifications
            WHERE state IN ('scheduled', 'sent') AND school_urn IS NOT NULL
            ORDER BY state = 'scheduled' DESC, created_at LIMIT :n"""), {"n": sample})).all()
        await conn.execute(text(
            "UPDATE notifier.notifications SET push_at = now() WHERE id = ANY(:ids) "
            "AND state = 'scheduled'"), {"ids": [row.id for row in chosen if row.waiting]})
        audit_before = (await conn.execute(
            text("SELECT count(*) FROM audit.audit_events"))).scalar()
    started = time.perf_counter()
    await _until(engine, "SELECT count(*) = 0 FROM notifier.notifications "
                         "WHERE state = 'scheduled' AND push_at <= now()", timeout_s)
    pushed = time.perf_counter() - started
    live = sum(not row.waiting for row in chosen)
    print(f"morning sample: {len(chosen):,} notifications pushed in {pushed:.1f} s = "
          f"{len(chosen) / pushed:,.0f}/s in {sent_mail()} content-free e-mails"
          + (f" ({live:,} of them pushed live: the school day had begun)" if live else ""))
    chosen = [(row.id, row.school_urn) for row in chosen]
    started = time.perf_counter()
    await _views(settings, notifier_url, chosen)
    viewed = time.perf_counter() - started
    await _until(engine, f"SELECT count(*) - {int(audit_before)} >= {len(chosen)} "
                         "FROM audit.audit_events", timeout_s)
    audited = time.perf_counter() - started
    print(f"  DSLs opened {len(chosen):,} in {viewed:.1f} s = {len(chosen) / viewed:,.0f}/s; "
          f"all {len(chosen):,} disclosures in the audit log after {audited:.1f} s = "
          f"{len(chosen) / audited:,.0f}/s")


async def _until(engine: AsyncEngine, sql: str, timeout_s: float) -> None:
    started = time.perf_counter()
    while not (await scalar_row(engine, sql))[0]:
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(sql)
        await asyncio.sleep(0.25)


async def _views(settings: Settings, url: str, chosen: list[Any], clients: int = 16) -> None:
    queue = list(chosen)

    async def reader() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            while queue:
                notification_id, urn = queue.pop()
                resp = await http.get(f"/v1/notifications/{notification_id}",
                                      headers=bearer(person("dsl", schools={urn})))
                resp.raise_for_status()

    await asyncio.gather(*(reader() for _ in range(clients)))


def national_year(rate: float) -> None:
    """Print what the measured rate means for 1.46 million incidents."""
    minutes = NATIONAL_YEAR / rate / 60
    verdict = "meets" if minutes <= TARGET_MINUTES else "MISSES"
    print(f"national year: {NATIONAL_YEAR:,} incidents at {rate:,.0f}/s = {minutes:.1f} min "
          f"({verdict} the {TARGET_MINUTES}-minute target; ratio {TARGET_MINUTES / minutes:.2f})")


def peak_memory(pids: dict[str, list[int]]) -> None:
    """Print each process's peak resident memory (VmHWM), summed over its worker processes."""
    parts = []
    for name, group in pids.items():
        peak = sum(_vm_hwm_kib(pid) for pid in group)
        parts.append(f"{name} {peak / 1024:,.0f} MiB")
    print("peak memory (VmHWM): " + ", ".join(parts))


def _vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--pupils", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32,
                        help="closed loop: police clients each posting once answered")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop: post N incidents a second on a steady clock instead")
    parser.add_argument("--max-connections", type=int, default=512,
                        help="open loop: connections at most (a request beyond them waits)")
    # one, as `daybreak serve` and scripts/services.sh deploy it: on this 2-core machine two
    # workers split the clients' requests into smaller group-commit batches, each paying its
    # own transactions (2026-12-03: 131/s at 13.9 ms an incident, against 198/s at 9.3 ms)
    parser.add_argument("--ingest-workers", type=int, default=1)
    parser.add_argument("--matchers", type=int, default=1,
                        help="matcher processes in one consumer group")
    parser.add_argument("--notifiers", type=int, default=1,
                        help="notifier processes in one consumer group")
    parser.add_argument("--compare-scale", action="store_true",
                        help="run one of each first, then --matchers/--notifiers, and compare")
    parser.add_argument("--morning", type=int, default=5_000,
                        help="notifications made due and pushed at the end (0: skip)")
    parser.add_argument("--warmup", type=int, default=10_000, metavar="INCIDENTS",
                        help="posted and drained before the measured load, which starts "
                        "from a warm pipeline (0: measure from a cold start)")
    parser.add_argument("--statements", type=int, default=0, metavar="N",
                        help="print the N statements PostgreSQL spent most time on while "
                        "measured (pg_stat_statements)")
    parser.add_argument("--idle", type=float, default=0, metavar="SECONDS",
                        help="first measure each part's CPU with no load for this long")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--set", action="append", default=[], metavar="DAYBREAK_X=VALUE",
                        type=_setting, help="a service setting for this run (repeatable), "
                        "e.g. DAYBREAK_KAFKA_COMPRESSION=lz4")
    parser.add_argument("--seal", choices=("on", "off"), default="on",
                        help="seal child data on the wire (off: the baseline that measures "
                        "what sealing costs; DAYBREAK_SEAL_CHILD_DATA)")
    args = parser.parse_args()
    if args.compare_scale and args.matchers == args.notifiers == 1:
        parser.error("--compare-scale needs --matchers or --notifiers above 1")
    return args


def today_london() -> Any:
    """Today's date in England."""
    return datetime.now(LONDON).date()


@dataclass(frozen=True)
class Workload:
    """The roster and the incidents, generated once and posted to every stack alike."""

    registry: Registry
    items: list[tuple[uuid.UUID, bytes]]
    children: int
    warmup: list[tuple[uuid.UUID, bytes]]  # posted and drained first, never measured
    warmup_children: int

    @classmethod
    def generate(cls, pupils: int, incidents: int, warmup: int = 0) -> Workload:
        """Generate, and print what was generated."""
        started = time.perf_counter()
        registry, gen = build_registry(pupils, today_london())
        bodies = list(incident_bodies(registry, gen, warmup + incidents, FORCE))
        items = [(incident_id_for(FORCE, json.loads(body)["incident_reference"]), body)
                 for body in bodies]
        kids = [body.count(b'"given_name"') for body in bodies]
        children = sum(kids[warmup:])
        print(f"generated {len(registry.world.pupils):,} pupils in {len(registry.world.urns)} "
              f"schools and {incidents:,} incidents ({children:,} children), and "
              f"{warmup:,} more to warm up with, in {time.perf_counter() - started:.1f} s")
        return cls(registry, items[warmup:], children, items[:warmup], sum(kids[:warmup]))


@dataclass(frozen=True)
class Result:
    """What one configuration measured, for the comparison."""

    label: str
    sustained: float
    cpu_ms: float
    latency: RateFigures | None


async def run(args: argparse.Namespace, stack: Stack, work: Workload, label: str) -> Result:
    """Register, load, wait, measure."""
    settings = stack.settings()
    assert stack.postgres is not None
    engine = make_engine(stack.postgres.owner_url, pool_size=2)
    watch = ScheduledWatch(settings.kafka(), settings.topic(topics.NOTIFICATIONS))
    try:
        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=stack.url("matcher"), timeout=300) as http:
            imported = await register(http, bearer(person("admin")), work.registry)
        seconds = time.perf_counter() - started
        print(f"registry API: {imported:,} pupils imported in {seconds:.1f} s")
        built = await index_built(stack, imported, timeout_s=args.timeout)
        print(f"matcher index: {imported:,} pupils built in the background {built:.1f} s "
              "after the import (steady state is measured from here)")
        fetch = await police_token(settings, stack.url("ingest"))
        await watch.start()
        if work.warmup:
            await warm_up(stack, engine, work, fetch, args)
        if args.idle:
            await idle_cpu(stack, args.idle)
        since = (await scalar_row(engine, "SELECT now()"))[0]
        batches_before = await ingest_batch_counts(stack)
        if args.statements:
            e2e_statements.reset(stack.postgres)
        cpu_before, compiling_before = cpu_seconds(stack), kafka_compiling_s(stack)
        poster = Poster(stack.url("ingest"), await fetch(), fetch, Load())
        everyone = work.warmup_children + work.children
        if args.rate:
            load = await post_open_loop(poster, work.items, args.rate,
                                        max_connections=args.max_connections)
            left = await backlog(engine, everyone)
        else:
            load = await post_closed_loop(poster, iter(work.items), args.clients)
        await ingest_batches(stack, args.ingest_workers, batches_before)
        drained = await wait_drained(engine, everyone, timeout_s=args.timeout)
        print(f"pipeline drained {drained:.1f} s after the last incident was accepted")
        rate = await report_pipeline(engine, load, since)
        figures = None
        if args.rate:
            await watch.caught_up()
            figures = RateFigures.of(load, watch, args.rate, left, work.children, drained)
            figures.report()
        cpu_ms = cpu_per_incident(cpu_before, cpu_seconds(stack), len(work.items))
        print_compiling(stack, compiling_before, len(work.items))
        if args.statements:
            e2e_statements.report(stack.postgres, len(work.items), args.statements)
        await pushed_meanwhile(engine, since)
        if args.morning:
            await morning(engine, settings, stack.url("notifier"), args.morning,
                          lambda: len(stack.mail.messages), timeout_s=args.timeout)
        peak_memory({name: pids for name, pids in part_pids(stack).items()})
        if not args.rate:
            national_year(rate)
        return Result(label, rate, cpu_ms, figures)
    finally:
        await watch.stop()
        await engine.dispose()


async def warm_up(stack: Stack, engine: AsyncEngine, work: Workload,
                  fetch: Callable[[], Awaitable[str]], args: argparse.Namespace) -> None:
    """Post the warm-up incidents closed loop and wait until they drained, so what is measured
    next is the pipeline in its steady state: a fresh broker's JVM spends its first tens of
    seconds compiling (its C2 compiler thread was 41% of the broker's CPU in the load's first
    20 s), which a broker that has run for weeks paid long ago. Prints the warm-up's CPU per
    incident, which holds that cost, beside the measured one."""
    started = time.perf_counter()
    cpu_before, compiling_before = cpu_seconds(stack), kafka_compiling_s(stack)
    poster = Poster(stack.url("ingest"), await fetch(), fetch, Load())
    await post_closed_loop(poster, iter(work.warmup), args.clients)
    await wait_drained(engine, work.warmup_children, timeout_s=args.timeout)
    spent = ms_per_incident(cpu_before, cpu_seconds(stack), len(work.warmup))
    compiling = compiling_ms(stack, compiling_before, len(work.warmup))
    print(f"warm-up: {len(work.warmup):,} incidents through the pipeline in "
          f"{time.perf_counter() - started:.1f} s, not measured; CPU per incident "
          f"{sum(spent.values()):.2f} ms (kafka {spent['kafka']:.2f} ms, of which its JVM "
          f"compiling {compiling:.2f} ms)")


def kafka_compiling_s(stack: Stack) -> float:
    """CPU seconds the broker's JIT compiler threads used so far."""
    return compiling_s(part_pids(stack)["kafka"])


def compiling_ms(stack: Stack, before: float, incidents: int) -> float:
    """The broker's JIT compiling per incident since `before` (a `kafka_compiling_s`), in ms."""
    return (kafka_compiling_s(stack) - before) * 1000 / incidents


def print_compiling(stack: Stack, before: float, incidents: int) -> None:
    """Print how much of the broker's CPU per incident its JIT compiler took: a broker that
    has run for a while compiles next to nothing, so a large share says the warm-up was too
    short for the figures to be a warm broker's."""
    ms = compiling_ms(stack, before, incidents)
    print(f"of kafka's, its JVM compiling: {ms:.2f} ms per incident (a warm broker's is near 0;"
          " raise --warmup if it is not)")


async def pushed_meanwhile(engine: AsyncEngine, since: datetime) -> None:
    """Print how many notifications the dispatcher pushed while the load was measured. From
    07:00 London on a school day a match is due at once, so the measured CPU then holds the
    morning's work too (e-mails, webhooks, the figures), the warm-up's among it; before, the
    pipeline only schedules, and --morning times the pushes apart."""
    pushed, made = await scalar_row(engine, """
        SELECT count(*) FILTER (WHERE sent_at >= :since), count(*) FILTER (
            WHERE created_at >= :since) FROM notifier.notifications""", since=since)
    clock = datetime.now(LONDON).strftime("%H:%M")
    due = ": pushes were due at once, and their CPU is in the figures above" if pushed else ""
    print(f"pushed while measured: {pushed:,} notifications (the load made {made:,}; "
          f"{clock} in London{due})")


_BATCHES = re.compile(r"^daybreak_ingest_batch_reports_(count|sum) (\S+)$", re.M)


async def ingest_batch_counts(stack: Stack) -> tuple[float, float]:
    """Batches and reports so far in ingest's `daybreak_ingest_batch_reports` histogram
    (with several uvicorn workers, the one worker that answers the scrape)."""
    async with httpx.AsyncClient(headers=stack.metrics_auth, timeout=10) as http:
        found = dict(_BATCHES.findall((await http.get(f"{stack.url('ingest')}/metrics")).text))
    return float(found.get("count", 0)), float(found.get("sum", 0))


async def ingest_batches(stack: Stack, workers: int, before: tuple[float, float]) -> None:
    """Print how many reports ingest's group commit put in a batch since `before`."""
    count, reports = (now - then for now, then in zip(await ingest_batch_counts(stack), before,
                                                      strict=True))
    whose = "its one worker" if workers == 1 else f"one of its {workers} workers"
    print(f"ingest batches ({whose}): {count:,.0f} batches of {reports:,.0f} reports, "
          f"{reports / max(count, 1):.1f} a batch")


_GAUGE = re.compile(r"^daybreak_matcher_index_(pupils|rebuilding|behind) (\S+)$", re.M)


async def index_built(stack: Stack, pupils: int, *, timeout_s: float) -> float:
    """Wait until every matcher serves an index of all `pupils` with no rebuild under way or
    owed (each looks for a changed roll every DAYBREAK_ROSTER_CHECK_SECONDS); seconds waited.
    The load starts after it, so the CPU per incident is matching's, not the build's."""
    started = time.perf_counter()
    copies = [s for name, s in stack.services.items() if name.split("-")[0] == "matcher"]
    async with httpx.AsyncClient(headers=stack.metrics_auth, timeout=10) as http:
        while True:
            states = [dict(_GAUGE.findall((await http.get(f"{s.url}/metrics")).text))
                      for s in copies]
            if all(float(st.get("pupils", 0)) >= pupils and float(st.get("rebuilding", 1)) == 0
                   and float(st.get("behind", 1)) == 0 for st in states):
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError("the matcher's index was not built")
            await asyncio.sleep(0.5)


PARTS = ("ingest", "matcher", "notifier", "audit", "kafka", "postgres")


def part_pids(stack: Stack) -> dict[str, list[int]]:
    """Each part's processes: every copy of a service (matcher-2 ...) and their workers,
    PostgreSQL's backends."""
    names = [*stack.services, "kafka", "postgres"]
    return {part: [pid for name in names if name == part or name.startswith(f"{part}-")
                   for pid in family(stack.pid(name))]
            for part in PARTS}


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system) used so far by each part and its live descendants."""
    return {name: cpu_s(pids) for name, pids in part_pids(stack).items()}


async def idle_cpu(stack: Stack, seconds: float) -> None:
    """Print the CPU each part spends with nothing to do (its loops, polls and heartbeats):
    what every incident's share is paid on top of."""
    before = cpu_seconds(stack)
    await asyncio.sleep(seconds)
    after = cpu_seconds(stack)
    spent = {name: (after[name] - before.get(name, 0)) / seconds for name in after}
    print(f"idle for {seconds:.0f} s, share of one core: " + ", ".join(
        f"{k} {v:.1%}" for k, v in spent.items()) + f"; total {sum(spent.values()):.1%}")


def ms_per_incident(before: dict[str, float], after: dict[str, float],
                    incidents: int) -> dict[str, float]:
    """Each part's CPU between two `cpu_seconds` readings, in ms per incident."""
    return {name: (after[name] - before.get(name, 0)) * 1000 / incidents for name in after}


def cpu_per_incident(before: dict[str, float], after: dict[str, float],
                     incidents: int) -> float:
    """Print the CPU each part spent per incident (the budget a 2-core machine has to share);
    return the total in ms."""
    spent = ms_per_incident(before, after, incidents)
    total = sum(spent.values())
    print("CPU per incident: " + ", ".join(f"{k} {v:.2f} ms" for k, v in spent.items())
          + f"; total {total:.2f} ms → at most {2000 / total:,.0f} incidents/s on 2 cores")
    return total


def measure(args: argparse.Namespace, work: Workload, matchers: int, notifiers: int) -> Result:
    """One private stack with this many matchers and notifiers, measured."""
    label = f"{matchers} matcher{'s' * (matchers > 1)} + {notifiers} notifier" + \
        "s" * (notifiers > 1)
    workers = f"{args.ingest_workers} worker{'s' * (args.ingest_workers > 1)}"
    print(f"\n=== {label}: starting a private PostgreSQL, Kafka and the services (ingest with "
          f"{workers}) ===")
    serve = {"ingest": ["--workers", str(args.ingest_workers)]} if args.ingest_workers > 1 \
        else {}
    # the notifier's dispatcher at its deployed interval, not the tests' quicker one
    env = {"DAYBREAK_DISPATCH_INTERVAL_S": str(NotifierSettings.model_fields[
        "dispatch_interval_s"].default)}
    if args.seal == "off":
        env["DAYBREAK_SEAL_CHILD_DATA"] = "false"
    env |= dict(setting.split("=", 1) for setting in args.set)
    print(f"child data sealing {args.seal}" + "".join(f"; {s}" for s in args.set))
    pg = e2e_statements.PRELOAD if args.statements else None
    with Stack.up(serve_args=serve, env=env, pg_options=pg) as stack:
        scale_out(stack, {"matcher": matchers, "notifier": notifiers})
        return asyncio.run(run(args, stack, work, label))


def _setting(text: str) -> str:
    name, sep, _ = text.partition("=")
    if not sep or not name.startswith("DAYBREAK_"):
        raise argparse.ArgumentTypeError(f"{text!r} is not DAYBREAK_NAME=VALUE")
    return text


def main() -> None:
    """Start a private stack (two, to compare), run the benchmark, tear everything down."""
    args = parse_args()
    work = Workload.generate(args.pupils, args.incidents, args.warmup)
    scales = [(1, 1)] if args.compare_scale else []
    results = [measure(args, work, m, n) for m, n in [*scales, (args.matchers, args.notifiers)]]
    if len(results) > 1:
        compare(results)


if __name__ == "__main__":
    main()
