"""`daybreak demo`: a police client reports a demo incident to the running ingest service."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from schemas import topics
from services.common.accounts import create_client
from services.common.db import UnitOfWork, make_engine
from services.common.kafka import partitions_of
from services.common.settings import Settings

INGEST = "http://127.0.0.1:8001"


def demo_incident(force: str, now: datetime) -> dict[str, Any]:
    """A made-up incident: the contract's example with a fresh reference."""
    return {
        "force_code": force,
        "incident_reference": f"{force}-DEMO-{secrets.token_hex(4).upper()}",
        "occurred_at": (now - timedelta(hours=1)).isoformat(),
        "incident_type": "domestic_abuse",
        "summary": "Verbal argument between adults; child present in the home.",
        "children": [{
            "given_name": "Amelia", "family_name": "Khan", "date_of_birth": "2016-03-02",
            "gender": "F", "address": {"line1": "12 Oak Road", "town": "Dudley",
                                       "postcode": "DY1 2AB"},
            "school_hint": {"urn": "103456", "name": "Oak Road Primary"},
            "present_at_incident": True,
        }],
    }


async def run_demo(settings: Settings, *, base_url: str = INGEST) -> int:
    """Create a police client, get a token, report an incident twice, show it on Kafka."""
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        async with UnitOfWork(engine) as uow:
            client = await create_client(uow.conn, force_code="WMP")
            await uow.commit()
    finally:
        await engine.dispose()
    print(f"1. police client for WMP created: {client.client_id}")
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        token = (await http.post("/v1/token", data={"grant_type": "client_credentials"},
                                 auth=(client.client_id, client.client_secret))).json()
        print(f"2. OAuth2 token issued (scope {token['scope']}, {token['expires_in']} s)")
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        body = demo_incident("WMP", datetime.now(UTC))
        first = await http.post("/v1/incidents", json=body, headers=auth)
        print(f"3. POST /v1/incidents -> {first.status_code} {first.json()}")
        again = await http.post("/v1/incidents", json=body, headers=auth)
        print(f"4. the same POST retried -> {again.status_code} {again.json()} (idempotent)")
    incident_id = first.json()["incident_id"]
    found = await _find_on_kafka(settings, settings.topic(topics.INCIDENTS), incident_id)
    print(f"5. on Kafka topic {settings.topic(topics.INCIDENTS)}: {found}")
    return 0 if first.status_code == 202 and found else 1


async def _find_on_kafka(settings: Settings, topic: str, incident_id: str) -> str | None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tps = await partitions_of(consumer, [topic])
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(0, ends[tp] - 50))
        batch = await consumer.getmany(timeout_ms=3000, max_records=10_000)
        for records in batch.values():
            for r in records:
                if r.key and r.key.decode() == incident_id:
                    event = json.loads(r.value)
                    return (f"{event['type']} v{event['version']} key={incident_id} "
                            f"partition={r.partition} offset={r.offset}")
        return None
    finally:
        await consumer.stop()


def main(settings: Settings) -> int:
    """Run the demo."""
    return asyncio.run(run_demo(settings))
