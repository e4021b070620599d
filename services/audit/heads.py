"""Signed tree heads: signed on a cadence, kept in the table, a file and a Kafka topic.

The copies outside the database are what make a rewrite visible: whoever can edit rows
(and disable the append-only trigger) can also delete heads from the table, but not from
the heads file or from `audit-heads.v1`. Verification reads the table and the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.audit import TreeHeadSigned
from schemas.envelope import wrap
from schemas.topics import AUDIT_HEADS
from services.audit.chain import format_timestamp
from services.audit.log import TreeCache
from services.audit.models import audit_tree_heads
from services.audit.tree_head import SignedTreeHead, TreeHead, key_id, sign_tree_head
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import KafkaConnection, TopicLayout

log = logging.getLogger(__name__)
__all__ = ["AUDIT_HEADS", "HeadSigner", "KafkaHeads"]
_HEAD_IDS = uuid.UUID("6f1d3c1e-7a1b-4d8e-9a55-1d2a6c0b7e43")


@dataclass(frozen=True, slots=True)
class StoredHead:
    """A signed tree head and the id of the key that signed it."""

    signed: SignedTreeHead
    key_id: str

    @property
    def tree_size(self) -> int:
        """How many entries the head covers."""
        return self.signed.head.tree_size

    def as_json(self) -> dict[str, object]:
        """The head as the API, the heads file and the topic spell it."""
        head = self.signed.head
        return {"tree_size": head.tree_size, "root_hash": head.root_hash,
                "signed_at": format_timestamp(head.timestamp), "key_id": self.key_id,
                "signature": self.signed.signature.hex()}


def head_of(tree_size: int, root_hash: str, signed_at: datetime, signature: bytes,
            key: str) -> StoredHead:
    """A stored head from its parts."""
    return StoredHead(SignedTreeHead(TreeHead(tree_size, root_hash, signed_at), signature), key)


async def load_heads(conn: AsyncConnection, *, key: str | None = None) -> list[StoredHead]:
    """Every head in the table (only those of one key if given), smallest first."""
    t = audit_tree_heads
    query = select(t.c.tree_size, t.c.root_hash, t.c.signed_at, t.c.signature, t.c.key_id)
    if key is not None:
        query = query.where(t.c.key_id == key)
    rows = (await conn.execute(query.order_by(t.c.tree_size))).all()
    return [head_of(*row) for row in rows]


async def latest_head(conn: AsyncConnection, *, key: str) -> StoredHead | None:
    """The largest head signed with this key."""
    t = audit_tree_heads
    row = (await conn.execute(
        select(t.c.tree_size, t.c.root_hash, t.c.signed_at, t.c.signature, t.c.key_id)
        .where(t.c.key_id == key).order_by(t.c.tree_size.desc()).limit(1))).first()
    return None if row is None else head_of(*row)


def read_heads_file(path: Path) -> list[StoredHead]:
    """Every head in the JSON-lines file; a torn last line (crash mid-write) is skipped."""
    if not path.exists():
        return []
    heads = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            item = json.loads(line)
            heads.append(head_of(int(item["tree_size"]), str(item["root_hash"]),
                                 datetime.fromisoformat(item["signed_at"]),
                                 bytes.fromhex(item["signature"]), str(item["key_id"])))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable tree head line", extra={"line": number})
    return heads


def append_head_line(path: Path, head: StoredHead) -> None:
    """Append one head to the JSON-lines file (creating its directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(head.as_json(), sort_keys=True) + "\n")


Publish = Callable[[StoredHead], Awaitable[None]]


class HeadSigner:
    """Signs a head every `every` appended entries or `interval_s` seconds, if the log grew."""

    def __init__(
        self, *, engine: AsyncEngine, tree: TreeCache, private_key: Ed25519PrivateKey,
        heads_file: Path, clock: Callable[[], datetime], every: int, interval_s: float,
        publish: Publish | None = None,
    ) -> None:
        self.engine, self.tree, self.heads_file = engine, tree, heads_file
        self.private_key = private_key
        self.key_id = key_id(private_key.public_key())
        self.clock, self.every, self.interval_s = clock, every, interval_s
        self.publish = publish
        self._pending = 0
        self._due = asyncio.Event()
        self._stopping = False
        self._lock = asyncio.Lock()
        self._publishing: set[asyncio.Task[None]] = set()

    def appended(self, count: int = 1) -> None:
        """Count committed entries; wake the signer once `every` have accumulated."""
        self._pending += count
        if self._pending >= self.every:
            self._due.set()

    async def run(self) -> None:
        """Sign at start (rebuilding the tree), then on each cadence, and once more when stopped."""
        while True:
            try:
                await self.sign_now()
            except Exception as exc:
                log.warning("tree head not signed", extra={"exc_type": type(exc).__name__})
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self.interval_s)
            self._due.clear()

    def stop(self) -> None:
        """Ask `run` to sign a last head and return."""
        self._stopping = True
        self._due.set()

    async def drain(self, timeout_s: float = 10) -> None:
        """Wait (a bounded time) for heads still being published."""
        if self._publishing:
            await asyncio.wait(self._publishing, timeout=timeout_s)

    async def sign_now(self) -> StoredHead | None:
        """Sign a head over every committed entry, unless the latest head already covers them."""
        async with self._lock:
            await self.tree.refresh(self.engine)
            size = self.tree.size
            async with self.engine.connect() as conn:
                latest = await latest_head(conn, key=self.key_id)
            if size == 0 or (latest is not None and latest.tree_size >= size):
                return latest
            head = TreeHead(size, self.tree.tree.root(size).hex(), self.clock())
            stored = StoredHead(SignedTreeHead(head, sign_tree_head(head, self.private_key)),
                                self.key_id)
            if not await self._insert(stored):
                return latest  # another instance signed this size first
            self._pending = 0
            try:
                await asyncio.to_thread(append_head_line, self.heads_file, stored)
            except OSError as exc:
                log.error("tree head not written to file", extra={"exc_type": type(exc).__name__})
        if self.publish is not None:  # in the background: a proof request never waits on Kafka
            task = asyncio.create_task(self._publish(self.publish, stored))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        return stored

    @staticmethod
    async def _publish(publish: Publish, stored: StoredHead) -> None:
        try:
            await publish(stored)
        except Exception as exc:  # the next head covers this one
            log.warning("tree head not published", extra={"exc_type": type(exc).__name__})

    async def _insert(self, stored: StoredHead) -> bool:
        head = stored.signed.head
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(audit_tree_heads).values(
                tree_size=head.tree_size, root_hash=head.root_hash, signed_at=head.timestamp,
                signature=stored.signed.signature, key_id=stored.key_id,
            ).on_conflict_do_nothing().returning(audit_tree_heads.c.tree_size))
            return result.first() is not None


class KafkaHeads:
    """Publishes signed heads to `audit-heads.v1`, keyed by key id; connects on first use."""

    def __init__(self, kafka: KafkaConnection, topic: str, *,
                 layout: TopicLayout = TopicLayout()) -> None:
        self.kafka, self.topic, self.layout = kafka, topic, layout
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, stored: StoredHead) -> None:
        """Publish one head (acks=all), one at a time."""
        async with self._lock:
            producer = await self._started()
            await producer.send_and_wait(self.topic, self._message(stored),
                                         key=stored.key_id.encode())

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            await ensure_topics(self.kafka, [self.topic], layout=self.layout, timeout_s=10)
            producer = make_producer(self.kafka)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    @staticmethod
    def _message(stored: StoredHead) -> bytes:
        head = stored.signed.head
        event = TreeHeadSigned(
            tree_size=head.tree_size, root_hash=head.root_hash, signed_at=head.timestamp,
            key_id=stored.key_id, signature=stored.signed.signature.hex(),
        )
        event_id = uuid.uuid5(_HEAD_IDS, f"{stored.key_id}:{head.tree_size}")
        return wrap(event, event_id=event_id, occurred_at=head.timestamp).to_bytes()

    async def stop(self) -> None:
        """Close the producer."""
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), 10)
            self._producer = None
