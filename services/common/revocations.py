"""The sessions and subjects every token verifier refuses, fed from `identity-revocations.v1`.

The identity service stages a `SessionsRevoked` in its outbox in the transaction that ends
sessions (services/identity/sessions.py). Each process of every other service reads the topic
whole, from its start, with no consumer group and no offsets (`RevocationFeed`), into an
in-memory `Denylist` its `TokenVerifier` asks before admitting a token: a restarted process
has refused nothing it should until it has read the topic back to where it ended at start,
so until then tokens wait (at most `revocations_wait_seconds`) and are then answered 503.

How soon a revocation takes effect: the identity relay publishes within its poll interval
(0.5 s, at once when woken after the commit), and each feed fetches as soon as the record is
committed (a fetch waits at most 0.5 s), so about a second on a healthy broker. While the broker
is away, the identity service still refuses the revoked tokens itself and the other services
refuse them when it is back; a token never outlives its own expiry (`exp`, at most the
longest token lifetime), and the topic keeps each revocation that long plus a margin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas.envelope import UnknownEventType, parse_envelope
from schemas.identity import IDENTITY_EVENT_TYPES, SessionsRevoked
from schemas.topics import REVOCATIONS
from services.common.jwks import KeysUnavailable, TokenVerifier
from services.common.kafka import ensure_topics, partitions_of
from services.common.settings import REVOCATION_MARGIN_MS, KafkaConnection, Settings, TopicLayout

log = logging.getLogger("daybreak.revocations")


class RevocationsUnavailable(KeysUnavailable):
    """The revocations topic has not been read to its end since this process started."""


@dataclass
class Denylist:
    """The revoked sessions (by `sid`) and subjects (tokens issued at or before a time).

    An entry older than `horizon` (the longest token lifetime and a margin) refuses nothing
    a signature check would still admit, and is dropped."""

    horizon: timedelta
    wait_s: float = 10.0
    sessions: dict[str, datetime] = field(default_factory=dict)
    subjects: dict[str, datetime] = field(default_factory=dict)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, event: SessionsRevoked) -> None:
        """Refuse what the event names from now on."""
        if event.sid is not None:
            self.sessions[event.sid] = max(event.revoked_before,
                                           self.sessions.get(event.sid, event.revoked_before))
        if event.subject is not None:
            self.subjects[event.subject] = max(
                event.revoked_before, self.subjects.get(event.subject, event.revoked_before))

    def revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether a verified token's claims name a revoked session, or a subject revoked
        since the token was issued (`iat` is whole seconds: a token issued in the second of
        the revocation is refused too)."""
        if str(claims.get("sid")) in self.sessions:
            return True
        before = self.subjects.get(str(claims.get("sub")))
        return before is not None and int(claims.get("iat", 0)) <= before.timestamp()

    async def refuses(self, claims: Mapping[str, Any]) -> bool:
        """`revoked`, once the feed has caught up (RevocationsUnavailable until it has)."""
        if not self.caught_up.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.caught_up.wait(), self.wait_s)
            if not self.caught_up.is_set():
                raise RevocationsUnavailable
        return self.revoked(claims)

    def prune(self, now: datetime) -> None:
        """Drop the entries too old to matter."""
        oldest = now - self.horizon
        for entries in (self.sessions, self.subjects):
            for key in [k for k, at in entries.items() if at < oldest]:
                del entries[key]


class RevocationFeed:
    """Reads the revocations topic into a `Denylist` for as long as the process runs,
    from the topic's start again after any fault."""

    def __init__(self, kafka: KafkaConnection, topic: str, *, denylist: Denylist,
                 layout: TopicLayout = TopicLayout(), retry_s: float = 1.0) -> None:
        self.kafka, self.topic, self.denylist = kafka, topic, denylist
        self.layout, self.retry_s = layout, retry_s
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._verifiers: list[TokenVerifier] = []

    def protect(self, verifier: TokenVerifier) -> None:
        """Make the verifier refuse what this feed has read, from when it starts (an app run
        without its lifespan, as some tests run one, has no feed and checks no revocation)."""
        self._verifiers.append(verifier)

    def start(self) -> None:
        """Read in the background; until the topic is read to its end, tokens wait."""
        for verifier in self._verifiers:
            verifier.revocations = self.denylist
        self._stop.clear()
        self._task = asyncio.create_task(self._forever())

    async def stop(self) -> None:
        """Stop reading."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _forever(self) -> None:
        while not self._stop.is_set():
            try:
                await self._read()
            except Exception as exc:
                log.warning("revocation feed stopped on %s; reading again",
                            type(exc).__name__)
                await asyncio.sleep(self.retry_s)

    async def _read(self) -> None:
        # a service's principal finds the topic made by `kafka_setup apply` and creates nothing
        await ensure_topics(self.kafka, [self.topic], layout=self.layout)
        consumer = AIOKafkaConsumer(**self.kafka.client_options(), enable_auto_commit=False,
                                    isolation_level="read_committed")
        await consumer.start()
        try:
            tps = await partitions_of(consumer, [self.topic])
            if not tps:
                raise LookupError("no partitions yet")
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            behind = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
            while not self._stop.is_set():
                behind = await self._poll(consumer, behind, ends)
        finally:
            await consumer.stop()

    async def _poll(self, consumer: AIOKafkaConsumer, behind: set[TopicPartition],
                    ends: Mapping[TopicPartition, int]) -> set[TopicPartition]:
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            for record in records:
                self._apply(record.value)
        behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
        if not behind and not self.denylist.caught_up.is_set():
            log.info("revocation feed caught up", extra={"revoked": len(
                self.denylist.sessions) + len(self.denylist.subjects)})
            self.denylist.caught_up.set()
        self.denylist.prune(datetime.now(UTC))
        return behind

    def _apply(self, value: bytes | None) -> None:
        try:
            envelope = parse_envelope(value or b"", IDENTITY_EVENT_TYPES)
        except (ValidationError, UnknownEventType, ValueError) as exc:
            log.warning("revocation skipped", extra={"exc_type": type(exc).__name__})
            return
        self.denylist.add(envelope.payload)


def revocation_feed(settings: Settings) -> RevocationFeed:
    """The feed of this deployment's revocations topic, as this process's principal."""
    horizon = timedelta(milliseconds=settings.longest_token_ttl_ms() + REVOCATION_MARGIN_MS)
    return RevocationFeed(
        settings.kafka(), settings.topic(REVOCATIONS), layout=settings.topic_layout(),
        denylist=Denylist(horizon=horizon, wait_s=settings.revocations_wait_seconds))
