"""Load a running ingest with N concurrent police clients; print accepted/s and p50/p99.

    python -m bench.ingest --concurrency 32 --requests 20000 [--url http://127.0.0.1:8001]

Needs the environment from `.daybreak/env` (it creates its own police client). The same run
measures `GET /healthz` as a baseline: the ratio shows what validation, PostgreSQL and the
Kafka acks=all round trip cost over a bare FastAPI answer. The server's own settings shape
the run: DAYBREAK_INGEST_BATCH_* (its group commit) and DAYBREAK_KAFKA_COMPRESSION.

Each phase also prints the server's CPU per request (the ingest process named by --server-pid,
by default `scripts/services.sh`'s, and its workers, read from /proc) and how busy the whole
machine was. A server that is CPU-bound in both phases can reach at most the ratio of the two
CPU figures; a machine far from busy says the run was bound by waiting (round trips, the
clients' concurrency), not by CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import secrets
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.procs import cpu_s, family, machine_ticks
from services.common.db import UnitOfWork, service_engine, standalone_uow
from services.common.settings import Settings
from services.demo import LA as DEMO_LA
from services.demo import demo_incident
from services.identity.accounts import create_client
from services.ingest.service import put_force


async def _new_token(url: str) -> str:
    settings = Settings()
    await _register_force(settings, "BENCH")
    async with standalone_uow(settings, "identity") as uow:
        client = await create_client(uow.conn, force_code="BENCH")
        await uow.commit()
    async with httpx.AsyncClient(base_url=url) as http:
        resp = await http.post("/v1/token", data={"grant_type": "client_credentials"},
                               auth=(client.client_id, client.client_secret))
        resp.raise_for_status()
        return str(resp.json()["access_token"])


async def _register_force(settings: Settings, force: str) -> None:
    """Ingest refuses a force with no default LA: the demo's LA, as the incidents are the demo's."""
    engine = service_engine(settings, "ingest", pool_size=1)
    try:
        await put_force(force, name="Benchmark force", fields=[], default_la_code=DEMO_LA,
                        uow=UnitOfWork(engine), now=datetime.now(UTC))
    finally:
        await engine.dispose()


class RawHttp:
    """A bare keep-alive HTTP/1.1 connection: the load generator must cost less than the
    server it measures (httpx spends ~1 ms of CPU per request, more than FastAPI does)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes = b"") -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in lines
                       if line.lower().startswith(b"content-length:")), 0)
        await self.reader.readexactly(length)
        return int(lines[0].split()[1])

    def close(self) -> None:
        """Drop the connection (a new one is opened on the next request)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _load(url: str, token: str, requests: int, concurrency: int, incidents: bool
                ) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    remaining = requests
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    now = datetime.now(UTC)
    parsed = httpx.URL(url)

    async def worker() -> None:
        nonlocal remaining
        conn = RawHttp(parsed.host, parsed.port or 80)
        while remaining > 0:
            remaining -= 1
            body = b""
            if incidents:
                incident = demo_incident("BENCH", now)
                incident["incident_reference"] = f"BENCH-{secrets.token_hex(8)}"
                body = json.dumps(incident).encode()
            started = time.perf_counter()
            if incidents:
                status = await conn.request("POST", "/v1/incidents", headers, body)
            else:
                status = await conn.request("GET", "/healthz", {})
            latencies.append(time.perf_counter() - started)
            codes[status] = codes.get(status, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, codes


def _child(args: tuple[str, str, int, int, bool], out: Any) -> None:
    url, token, requests, concurrency, incidents = args
    started = time.perf_counter()
    lat, codes = asyncio.run(_load(url, token, requests, concurrency, incidents))
    out.put((lat, codes, started, time.perf_counter()))


def server_pid(option: int | None) -> int | None:
    """The ingest server's pid: given, or from scripts/services.sh's pid file; None when
    unknown or when that process is gone (a stale pid file)."""
    pid = option
    if pid is None:
        try:
            pid = int(Path(".daybreak/run/ingest.pid").read_text().strip())
        except (OSError, ValueError):
            return None
    return pid if Path(f"/proc/{pid}").exists() else None


def run(url: str, token: str, requests: int, concurrency: int, procs: int,
        incidents: bool, server: int | None = None) -> dict[str, float]:
    """Spread the load over `procs` client processes; return rate and latency figures, and
    the server's CPU per request and the machine's busy share while it ran."""
    pids = family(server)
    cpu_before, (busy_before, total_before) = cpu_s(pids), machine_ticks()
    queue: Any = mp.Queue()
    per = (requests // procs, concurrency // procs or 1)
    workers = [mp.Process(target=_child, args=((url, token, per[0], per[1], incidents), queue))
               for _ in range(procs)]
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    latencies = sorted(x for r in results for x in r[0])
    codes: dict[int, int] = {}
    for r in results:
        for code, n in r[1].items():
            codes[code] = codes.get(code, 0) + n
    cpu_after, (busy_after, total_after) = cpu_s(pids), machine_ticks()
    wall = max(r[3] for r in results) - min(r[2] for r in results)
    ok = codes.get(202 if incidents else 200, 0)
    return {
        "ok": ok, "errors": sum(codes.values()) - ok, "seconds": wall, "rate": ok / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "server_cpu_ms": (cpu_after - cpu_before) * 1000 / max(1, sum(codes.values()))
        if pids else float("nan"),
        "busy": (busy_after - busy_before) / max(1, total_after - total_before),
    }


def main() -> None:
    """Parse arguments, run baseline and incident load, print figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8001")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--client-procs", type=int, default=1)
    parser.add_argument("--server-pid", type=int, default=None,
                        help="the ingest process (default: .daybreak/run/ingest.pid)")
    args = parser.parse_args()
    server = server_pid(args.server_pid)
    token = asyncio.run(_new_token(args.url))
    base = run(args.url, token, args.requests, args.concurrency, args.client_procs, False,
               server)
    inc = run(args.url, token, args.requests, args.concurrency, args.client_procs, True,
              server)
    for name, r in (("baseline GET /healthz", base), ("POST /v1/incidents", inc)):
        print(f"{name:24s} {r['ok']:>7.0f} ok {r['errors']:>5.0f} errors  "
              f"{r['rate']:>8.0f}/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
              f"server CPU {r['server_cpu_ms']:.3f} ms a request  machine {r['busy']:.0%} busy")
    if server is not None:
        print(f"CPU-bound at both, the server could reach at most a ratio of "
              f"{base['server_cpu_ms'] / inc['server_cpu_ms']:.2f} (its CPU per health check "
              f"over its CPU per incident)")
    ratio = inc["rate"] / base["rate"]
    met = ratio >= 0.35 and inc["p99_ms"] <= 100
    print(f"incidents/healthz throughput ratio: {ratio:.2f}; issue 16's target, a ratio >= "
          f"0.35 at p99 <= 100 ms: {'MET' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
