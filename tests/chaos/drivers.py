"""What the chaos run drives: police posting incidents, DSLs reading, and the chaos monkey."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.api import basic
from tests.support.stack import Stack

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CRASHES_DISPATCH = ("notifier", "postgres")  # what can interrupt an e-mail between send and mark


async def until_ok(call: Any, *, seconds: float = 120) -> httpx.Response:
    """Retry a request through outages until it answers something other than 5xx."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            resp: httpx.Response = await call()
            if resp.status_code not in RETRY_STATUSES:
                return resp
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError("no answer through the outage")
        await asyncio.sleep(0.3)


@dataclass
class Police:
    """Posts every incident until it is accepted, retrying with the same body."""

    base_url: str
    client_id: str
    secret: str
    accepted: dict[str, str] = field(default_factory=dict)  # reference -> incident_id
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    unexpected: list[tuple[str, int, str]] = field(default_factory=list)
    _token: str = ""

    async def post_all(self, incidents: list[dict[str, Any]], *, over_s: float,
                       concurrency: int = 8) -> None:
        """Post them paced evenly over `over_s` seconds, `concurrency` at a time."""
        started = time.monotonic()
        queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
        for item in enumerate(incidents):
            queue.put_nowait(item)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as client:
            async def worker() -> None:
                while not queue.empty():
                    i, body = queue.get_nowait()
                    await asyncio.sleep(max(0.0, started + i * over_s / len(incidents)
                                            - time.monotonic()))
                    await self._post(client, body)
            await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> None:
        while True:
            try:
                if not self._token:
                    await self._refresh(client)
                resp = await client.post("/v1/incidents", json=body,
                                         headers={"Authorization": f"Bearer {self._token}"})
            except httpx.TransportError:
                self.transport_errors += 1
                await asyncio.sleep(0.3)
                continue
            self.statuses[resp.status_code] += 1
            if resp.status_code in (200, 202):
                self.accepted[body["incident_reference"]] = resp.json()["incident_id"]
                return
            if resp.status_code == 401:
                self._token = ""
            elif resp.status_code not in RETRY_STATUSES:
                self.unexpected.append((body["incident_reference"], resp.status_code, resp.text))
                return
            await asyncio.sleep(0.3)

    async def _refresh(self, client: httpx.AsyncClient) -> None:
        resp = await until_ok(lambda: client.post(
            "/v1/token", data={"grant_type": "client_credentials"},
            headers=basic(self.client_id, self.secret)))
        assert resp.status_code == 200, resp.text
        self._token = resp.json()["access_token"]


@dataclass
class Readers:
    """DSLs (and the LA officer) opening a third of their notifications as they appear."""

    base_url: str
    headers: list[dict[str, str]]
    attempts: Counter[str] = field(default_factory=Counter)  # notification id -> tries
    opened: set[str] = field(default_factory=set)  # answered 200
    # notification id -> the children the 200 showed: a sibling matched after the reader
    # opened it is shown (and audited) only to whoever opens it later
    shown: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[tuple[str, int]] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep reading until `stop`, then one last round."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as client:
            while True:
                last = stop.is_set()
                for headers in self.headers:
                    await self._round(client, headers)
                if last:
                    return
                await asyncio.sleep(0.5)

    async def _round(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        try:
            listed = await client.get("/v1/notifications", headers=headers)
            items = listed.json()["items"] if listed.status_code == 200 else []
            for item in items:
                nid = item["id"]
                if uuid.UUID(nid).int % 3 or nid in self.opened:
                    continue
                self.attempts[nid] += 1
                shown = await client.get(f"/v1/notifications/{nid}", headers=headers)
                self.statuses[shown.status_code] += 1
                if shown.status_code == 200:
                    self.opened.add(nid)
                    self.shown[nid] = len(shown.json()["children"])
                elif shown.status_code not in RETRY_STATUSES:
                    self.unexpected.append((nid, shown.status_code))
        except httpx.TransportError:
            await asyncio.sleep(0.3)


@dataclass
class Monkey:
    """Kills and restarts parts of the stack at random moments, one at a time."""

    stack: Stack
    rng: random.Random
    events: list[tuple[float, float, str]] = field(default_factory=list)  # start, end, what

    async def run(self, plan: list[str], *, over_s: float) -> None:
        """Each step ("ingest:kill", "kafka:term", "postgres:kill") at a random moment."""
        started = time.monotonic()
        moments = sorted(self.rng.uniform(0.05, 0.9) * over_s for _ in plan)
        for moment, step in zip(moments, plan, strict=True):
            await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
            name, _, how = step.partition(":")
            began = time.monotonic()
            await asyncio.to_thread(self.stack.restart, name, hard=how != "term")
            self.events.append((began, time.monotonic(), step))

    def explains(self, first_at: float, again_at: float) -> bool:
        """True when a crash of the notifier or PostgreSQL came between two deliveries."""
        return any(what.split(":")[0] in CRASHES_DISPATCH and first_at - 0.5 <= began <= again_at
                   for began, _, what in self.events)
