"""What sealing child data costs per incident, against serialising it, in the same run.

Run: .venv/bin/python -m bench.sealing [--incidents 2000] [--pupils 20000]

Each incident (1-3 children, as `bench.e2e` posts them) is an `IncidentReceived` envelope.
The baseline is what every event costs anyway: its JSON bytes (`to_bytes`) and parsing them
back (`parse` with nothing sealed). Then the same envelopes are sealed (`wire_bytes`: each
child, the summary, AES-256-GCM under the month's data key) and opened (`parse`). Prints CPU
per incident for each, and what sealing adds. An incident is sealed once (ingest) and opened
once (the matcher), so the pair is the pipeline's whole cost; the notifier's sealed columns
and outbox rows add about the same again per matched child.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from bench.e2e_data import build_registry, incident_bodies
from schemas.envelope import wrap
from schemas.incidents import IncidentIn, IncidentReceived
from services.common.crypto import Keyring, create_kek_file
from services.common.sealing import ChildSealing


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=2000)
    parser.add_argument("--pupils", type=int, default=20_000)
    return parser.parse_args()


def cpu_per(n: int, work: Callable[[], object]) -> float:
    """CPU microseconds per item of `work()` over n items."""
    start = time.process_time()
    work()
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    args = parse_args()
    registry, gen = build_registry(args.pupils, date.today())
    now = datetime.now(UTC)
    envelopes = [wrap(IncidentReceived(incident_id=uuid.uuid4(), received_at=now,
                                       incident=IncidentIn.model_validate_json(body),
                                       default_la_code="E09000001"), occurred_at=now)
                 for body in incident_bodies(registry, gen, args.incidents, "WMP")]
    children = sum(len(e.payload.incident.children) for e in envelopes)
    n = len(envelopes)
    with tempfile.TemporaryDirectory() as tmp:
        create_kek_file(Path(tmp) / "kek")
        keyring = Keyring.at(Path(tmp) / "keys", Path(tmp) / "kek")
        sealing, clear = ChildSealing(None, keyring=keyring), ChildSealing(None, seal_new=False)
        plain = [e.to_bytes() for e in envelopes]
        sealing.wire_bytes(plain[0])  # the month's key made outside the timing
        sealed: list[bytes] = []
        for _ in range(2):  # the first pass warms every path up; the second is reported
            sealed.clear()
            write = cpu_per(n, lambda: [e.to_bytes() for e in envelopes])
            read = cpu_per(n, lambda: [clear.parse(b) for b in plain])
            seal = cpu_per(n, lambda: sealed.extend(sealing.wire_bytes(b) for b in plain))
            opened = cpu_per(n, lambda: [sealing.parse(b) for b in sealed])
    assert sealing.parse(sealed[0]) == envelopes[0]  # what was sealed opens whole
    print(f"{n:,} incidents, {children:,} children; CPU per incident:")
    print(f"  serialise {write:8.1f} us   parse {read:8.1f} us   (every event pays these)")
    print(f"  seal      {seal:8.1f} us   open  {opened:8.1f} us   (sealed child data)")
    print(f"sealing adds {seal + opened - read:,.1f} us per incident on the way in and out "
          f"({(seal + opened) / (write + read):.1f}x what serialising and parsing cost), "
          f"{sum(map(len, sealed)) / sum(map(len, plain)):.2f}x the bytes")


if __name__ == "__main__":
    main()
