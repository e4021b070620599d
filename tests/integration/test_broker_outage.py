"""Stop the real broker: ingest answers 503 and keeps nothing; accepted incidents all arrive.

Marked `broker_outage`: it restarts the session's shared broker, so tests/conftest.py runs it
after every other test that uses that broker.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections import Counter

import pytest

from services.common.settings import Settings
from services.ingest.main import build_app
from tests.conftest import REPO
from tests.support.api import issuer_for, new_police_client, police_token, running
from tests.support.incidents import incident_body
from tests.support.kafka import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.broker_outage]


def infra(action: str) -> None:
    # output to a file, not a pipe: the broker it starts would hold a pipe open forever
    with (REPO / ".daybreak" / "test-infra.log").open("ab") as log:
        subprocess.run(["bash", str(REPO / "scripts" / "infra.sh"), action], check=True,
                       stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=180)


async def test_broker_down_is_503_and_accepted_incidents_all_arrive(settings) -> None:
    quick = Settings(**{**settings.model_dump(), "kafka_request_timeout_ms": 2000})
    async with running(build_app(quick, issuer=issuer_for(quick))) as api:
        client_id, secret = await new_police_client(settings, "WMP")
        auth = {"Authorization": f"Bearer {await police_token(api, client_id, secret)}"}
        accepted = []
        for _ in range(20):
            resp = await api.post("/v1/incidents", json=incident_body(), headers=auth)
            assert resp.status_code == 202
            accepted.append(resp.json()["incident_id"])

        await asyncio.to_thread(infra, "kafka-stop")
        try:
            refused = incident_body()
            down = await api.post("/v1/incidents", json=refused, headers=auth)
            assert down.status_code == 503
            assert down.headers["content-type"].startswith("application/problem+json")
            assert (await api.get("/readyz")).status_code == 503
        finally:
            await asyncio.to_thread(infra, "kafka-start")

        for _ in range(60):
            again = await api.post("/v1/incidents", json=refused, headers=auth)
            if again.status_code != 503:
                break
            await asyncio.sleep(1)
        # 202, not 200: the refused attempt left nothing behind
        assert again.status_code == 202
        accepted.append(again.json()["incident_id"])
        after = await api.post("/v1/incidents", json=incident_body(), headers=auth)
        assert after.status_code == 202
        accepted.append(after.json()["incident_id"])

    records = await read_topic(settings.kafka(), settings.topic("incidents.v1"),
                               at_least=len(accepted), timeout_s=30)
    await asyncio.sleep(2)  # a late duplicate would show up now
    records = await read_topic(settings.kafka(), settings.topic("incidents.v1"))
    keys = Counter(r.key.decode() for r in records)
    assert set(keys) == set(accepted)
    assert all(n == 1 for n in keys.values()), keys
    assert all(json.loads(r.value)["type"] == "IncidentReceived" for r in records)
