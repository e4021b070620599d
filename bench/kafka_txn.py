"""What one Kafka transaction costs, against the same records sent without one, in one run.

Run (after `scripts/infra.sh up`; the settings from `.daybreak/env`):

    .venv/bin/python -m bench.kafka_txn [--records 2000] [--batch 20] [--warm 200]

Every service publishes through `KafkaPublisher` (services/common/kafka.py): a transaction,
acks=all, answered once read_committed readers can see the records. Ingest pays one per
group-commit batch, so when reports arrive one at a time (a steady low rate) each report pays
a transaction of its own. This bench sends the same records three ways on fresh topics:

* one record per transaction (ingest at a low rate);
* --batch records per transaction (ingest when requests queue up);
* the baseline: an idempotent acks=all producer with no transaction, each record awaited.

and prints, per record, the wall time, this process's CPU and the broker's CPU (read from
/proc for the broker `scripts/infra.sh` started; only this bench should load it meanwhile),
with each way's ratio to the baseline. Each way first sends --warm records, not counted (the
broker's JIT warms up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka import KafkaPublisher, Message, ensure_topics
from services.common.settings import Settings

BROKER_PID = Path(".daybreak/kafka.pid")
VALUE = b'{"payload": "' + b"x" * 1500 + b'"}'  # about an IncidentReceived's size, sealed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000, help="records sent each way")
    parser.add_argument("--batch", type=int, default=20, help="records per batched transaction")
    parser.add_argument("--warm", type=int, default=200, help="records sent first, not counted")
    return parser.parse_args()


def broker_cpu_s() -> float | None:
    """The broker's CPU seconds so far (user + system), None when it cannot be read."""
    try:
        fields = Path(f"/proc/{BROKER_PID.read_text().strip()}/stat").read_text()
    except (OSError, ValueError):
        return None
    after_name = fields.rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cost:
    """Per record: wall milliseconds, this process's CPU and the broker's CPU."""

    wall_ms: float
    client_ms: float
    broker_ms: float | None


async def measure(records: int, send: Callable[[int], Awaitable[int]]) -> Cost:
    """Call `send(i)` (which sends some records and says how many) until `records` are sent."""
    started, cpu, broker = time.perf_counter(), time.process_time(), broker_cpu_s()
    sent = 0
    while sent < records:
        sent += await send(sent)
    broker_after = broker_cpu_s()
    return Cost((time.perf_counter() - started) * 1000 / sent,
                (time.process_time() - cpu) * 1000 / sent,
                None if broker is None or broker_after is None
                else (broker_after - broker) * 1000 / sent)


async def run(args: argparse.Namespace, settings: Settings) -> dict[str, Cost]:
    """Send the records each way to `settings`' incidents topic; each way's cost."""
    kafka = settings.kafka()
    topic = settings.topic("incidents.v1")
    await ensure_topics(kafka, [topic], layout=settings.topic_layout())
    publisher = KafkaPublisher(kafka, topics=[topic], layout=settings.topic_layout())
    plain = AIOKafkaProducer(**kafka.producer_options(), acks="all", enable_idempotence=True,
                             linger_ms=0)
    await plain.start()

    async def no_txn(i: int) -> int:
        await plain.send_and_wait(topic, VALUE, key=str(i).encode())
        return 1

    async def one_per_txn(i: int) -> int:
        await publisher.publish(topic, key=str(i), value=VALUE)
        return 1

    async def batched(i: int) -> int:
        await publisher.publish_many([Message(topic, str(i + k), VALUE)
                                      for k in range(args.batch)])
        return args.batch

    ways = {"no transaction, acks=all (baseline)": no_txn,
            "one record per transaction": one_per_txn,
            f"{args.batch} records per transaction": batched}
    try:
        for send in ways.values():
            await measure(args.warm, send)
        return {label: await measure(args.records, send) for label, send in ways.items()}
    finally:
        await plain.stop()
        await publisher.stop()


async def run_on_fresh_topics(args: argparse.Namespace) -> dict[str, Cost]:
    """`run` on topics of its own, deleted afterwards."""
    settings = Settings(topic_prefix=f"bench-txn-{uuid.uuid4().hex[:8]}.")
    try:
        return await run(args, settings)
    finally:
        admin = AIOKafkaAdminClient(**settings.kafka().client_options())
        await admin.start()
        try:
            await admin.delete_topics([settings.topic("incidents.v1")])
        finally:
            await admin.close()


def main() -> None:
    args = parse_args()
    costs = asyncio.run(run_on_fresh_topics(args))
    base = next(iter(costs.values()))
    for label, cost in costs.items():
        broker = "n/a" if cost.broker_ms is None else f"{cost.broker_ms:.3f} ms"
        ratio = ("" if cost.broker_ms is None or not base.broker_ms
                 else f", broker {cost.broker_ms / base.broker_ms:.2f}x")
        print(f"{label:40} per record: wall {cost.wall_ms:.3f} ms, this process "
              f"{cost.client_ms:.3f} ms, broker {broker} (wall {cost.wall_ms / base.wall_ms:.2f}x"
              f"{ratio} the baseline)")
    if base.broker_ms is None:
        print(f"broker CPU not read: no live broker pid in {BROKER_PID} "
              "(run from the repository after scripts/infra.sh up)")


if __name__ == "__main__":
    main()
