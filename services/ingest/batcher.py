"""Group commit for new incidents: the reports waiting at one moment share one transaction.

Each batch is one PostgreSQL transaction holding a constant number of statements (the
incidents in one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`, their first versions
in another, their receipts' change rows set-based), then one Kafka transaction for all their
`IncidentReceived` events. Only once that transaction committed and read_committed consumers
can see every event does the database commit, and only then is each request answered: `202`
means durable and visible, exactly as one request at a time did. If the database or the broker
fails, the database rolls back, the Kafka transaction is never committed (the publisher's next
producer fences and aborts it), and every request of the batch gets `503` with nothing kept;
its retry is a new request in a later batch. (The one ambiguous case is as it was per request:
Kafka committed, then PostgreSQL failed before its commit; the retries republish identical
events, which consumers skip by `event_id`.) A retry of a report already kept (`200`), a reused
reference with another body (`409`) and a force that is not ready (`409`) are settled in the
same batch, set-based, and answered after its commit like the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas import topics
from schemas.envelope import wrap
from schemas.incidents import IncidentIn, IncidentReceived
from services.common.db import UnitOfWork
from services.common.errors import is_transient
from services.common.kafka import Message
from services.common.problems import Problem
from services.ingest.receipts import note_incident_changes
from services.ingest.service import (
    Outcome,
    child_digests,
    disclosure_fields,
    force_not_ready,
    reference_conflict,
)

log = logging.getLogger(__name__)

# a force without a default LA stores nothing; incidents in id order, so two batches lock
# the unique index in the same order
_INSERT = text("""
INSERT INTO ingest.incidents AS i (incident_id, force_code, incident_reference, body_sha256,
  status, children_count, received_at)
SELECT r.incident_id, r.force_code, r.incident_reference, r.body_sha256, 'accepted',
  r.children_count, r.received_at
FROM unnest(CAST(:ids AS uuid[]), CAST(:forces AS varchar[]), CAST(:refs AS varchar[]),
  CAST(:digests AS varchar[]), CAST(:children AS smallint[]), CAST(:received AS timestamptz[]))
  AS r(incident_id, force_code, incident_reference, body_sha256, children_count, received_at)
JOIN ingest.forces f ON f.force_code = r.force_code AND f.default_la_code IS NOT NULL
ORDER BY r.incident_id
ON CONFLICT DO NOTHING
RETURNING i.incident_id,
  (SELECT p.disclosure_profile FROM ingest.forces p WHERE p.force_code = i.force_code),
  (SELECT p.default_la_code FROM ingest.forces p WHERE p.force_code = i.force_code)""")
_VERSIONS = text("""
INSERT INTO ingest.incident_versions (incident_id, version, body_sha256, child_digests,
  received_at)
SELECT r.incident_id, 1, r.body_sha256, CAST(r.child_digests AS jsonb), r.received_at
FROM unnest(CAST(:ids AS uuid[]), CAST(:digests AS varchar[]), CAST(:child_digests AS text[]),
  CAST(:received AS timestamptz[])) AS r(incident_id, body_sha256, child_digests, received_at)
ORDER BY r.incident_id""")
_EXISTING = text("""
SELECT incident_id, body_sha256, status FROM ingest.incidents
WHERE incident_id = ANY(CAST(:ids AS uuid[]))""")
_UNAVAILABLE = ("Service unavailable", "A dependency is unavailable; retry later.")


class BatchPublisher(Protocol):
    """Sends messages in one Kafka transaction; returns once read_committed readers see them."""

    async def publish_many(self, messages: Sequence[Message]) -> None: ...


@dataclass
class _Request:
    body: IncidentIn
    incident_id: uuid.UUID
    digest: str
    now: datetime
    done: asyncio.Future[Outcome]


@dataclass(frozen=True)
class _Kept:
    """A stored incident as a later request of the batch compares with it."""

    body_sha256: str
    status: str


class IngestBatcher:
    """Collects the reports waiting at one moment (at most `max_batch`, waiting up to `linger_s`
    for more while the batch is not full) and writes them as one batch; at most `in_flight` batches
    at a time, each holding one pooled connection."""

    def __init__(self, *, engine: AsyncEngine, publisher: BatchPublisher, topic_prefix: str,
                 max_batch: int = 200, linger_s: float = 0.001, in_flight: int = 2,
                 sizes: Histogram | None = None) -> None:
        self.engine = engine
        self.sizes = sizes  # reports per batch: how well the group commit amortises
        self.publisher = publisher
        self.topic = f"{topic_prefix}{topics.INCIDENTS}"
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._slots = asyncio.Semaphore(in_flight)
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._grown = asyncio.Event()  # a request joined the queue
        self._collector: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()

    async def accept(self, body: IncidentIn, *, incident_id: uuid.UUID, digest: str,
                     now: datetime) -> Outcome:
        """Store and publish this report with the others waiting now; its outcome once the
        batch committed (raises the request's own Problem, or 503 if the batch failed)."""
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(body, incident_id, digest, now, done))
        self._grown.set()
        if self._collector is None or self._collector.done():
            self._collector = asyncio.create_task(self._collect())
        return await done

    async def _collect(self) -> None:
        while True:
            batch = [await self._queue.get()]
            try:
                await self._slots.acquire()  # while every slot is busy, the next batch grows
                await self._linger()
            except asyncio.CancelledError:
                _unavailable(batch)  # stopped before it was written
                raise
            while not self._queue.empty() and len(batch) < self.max_batch:
                batch.append(self._queue.get_nowait())
            if self.sizes is not None:
                self.sizes.observe(len(batch))
            task = asyncio.create_task(self._run(batch))
            self._batches.add(task)
            task.add_done_callback(self._finished)

    async def _linger(self) -> None:
        """Wait until the batch is full or `linger_s` has passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger_s
        while self._queue.qsize() < self.max_batch - 1:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._grown.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._grown.wait(), left)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._batches.discard(task)
        self._slots.release()

    async def _run(self, batch: list[_Request]) -> None:
        try:
            outcomes = await self._write(batch)
        except BaseException as exc:
            level = logging.WARNING if is_transient(exc) else logging.ERROR
            log.log(level, "incident batch failed, nothing kept",
                    extra={"exc_type": type(exc).__name__, "batch_size": len(batch)})
            _unavailable(batch)
            if not isinstance(exc, Exception):
                raise
            return
        for request, outcome in zip(batch, outcomes, strict=True):
            if request.done.done():
                continue  # its client went away; the report is kept, a retry answers 200
            if isinstance(outcome, Problem):
                request.done.set_exception(outcome)
            else:
                request.done.set_result(outcome)

    async def _write(self, batch: list[_Request]) -> list[Outcome | Problem]:
        """One transaction for the batch; each request's outcome, once it committed."""
        first: dict[uuid.UUID, _Request] = {}
        for request in batch:
            first.setdefault(request.incident_id, request)
        new = sorted(first.values(), key=lambda r: r.incident_id)
        async with UnitOfWork(self.engine) as uow:
            inserted = {row[0]: row for row in await uow.conn.execute(_INSERT, {
                "ids": [r.incident_id for r in new], "forces": [r.body.force_code for r in new],
                "refs": [r.body.incident_reference for r in new],
                "digests": [r.digest for r in new],
                "children": [len(r.body.children) for r in new],
                "received": [r.now for r in new]})}
            created = [r for r in new if r.incident_id in inserted]
            kept = await self._existing(uow.conn, [r.incident_id for r in new
                                                   if r.incident_id not in inserted])
            kept |= {r.incident_id: _Kept(r.digest, "accepted") for r in created}
            if created:
                await self._store(uow.conn, created)
                await self.publisher.publish_many([self._event(r, inserted[r.incident_id])
                                                   for r in created])
                # last: numbering the receipts' changes locks each force's counter, a row
                # the receipts consumer takes too, so it is held for these statements only,
                # never across the Kafka transaction (one `now` per batch: the requests'
                # clocks differ by the batch's linger at most)
                await note_incident_changes(uow.conn, [r.incident_id for r in created],
                                            change="IncidentAccepted", now=created[0].now)
            await uow.commit()
        winners = {id(r) for r in created}
        return [Outcome(True, r.incident_id, "accepted") if id(r) in winners
                else _settled(r, kept.get(r.incident_id)) for r in batch]

    @staticmethod
    async def _existing(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, _Kept]:
        if not ids:
            return {}
        rows = await conn.execute(_EXISTING, {"ids": ids})
        return {row.incident_id: _Kept(row.body_sha256, row.status) for row in rows}

    @staticmethod
    async def _store(conn: AsyncConnection, created: list[_Request]) -> None:
        await conn.execute(_VERSIONS, {
            "ids": [r.incident_id for r in created], "digests": [r.digest for r in created],
            "child_digests": [json.dumps(child_digests(r.incident_id, r.body))
                              for r in created],
            "received": [r.now for r in created]})

    def _event(self, request: _Request, inserted: Any) -> Message:
        incident_id, now = request.incident_id, request.now
        event = IncidentReceived(
            incident_id=incident_id, received_at=now, incident=request.body,
            disclosure_fields=disclosure_fields(inserted.disclosure_profile),
            default_la_code=inserted.default_la_code,
        )
        envelope = wrap(event, event_id=uuid.uuid5(incident_id, f"received:{request.digest}"),
                        occurred_at=now, correlation_id=incident_id)
        return Message(self.topic, str(incident_id), envelope.to_bytes())

    async def stop(self, timeout_s: float = 10) -> None:
        """Stop collecting; let the batches in flight finish (their requests are answered)."""
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
            self._collector = None
        if self._batches:
            await asyncio.wait(set(self._batches), timeout=timeout_s)
        waiting = []  # collected by nobody: the client may retry
        while not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        _unavailable(waiting)


def _unavailable(requests: list[_Request]) -> None:
    """Answer 503 (nothing kept) to each request still waiting, each with its own exception
    (one shared by all would grow its traceback with every raise)."""
    for request in requests:
        if not request.done.done():
            request.done.set_exception(
                Problem(503, *_UNAVAILABLE, headers={"Retry-After": "5"}))


def _settled(request: _Request, kept: _Kept | None) -> Outcome | Problem:
    """A request whose incident the batch did not create: already kept, or refused."""
    if kept is None:
        return force_not_ready(request.body.force_code)
    if kept.body_sha256 != request.digest:
        return reference_conflict()
    return Outcome(False, request.incident_id, kept.status)
