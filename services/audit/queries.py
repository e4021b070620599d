"""The read side: filtered listings, CSV export and whole-log verification."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.audit import AUDIT_EVENT_TYPES, TreeHeadCosigned
from schemas.envelope import parse_envelope
from schemas.topics import AUDIT_COSIGNATURES
from services.audit.breaks import load_acknowledgements
from services.audit.chain import AuditEntry, format_timestamp
from services.audit.cosign import (
    Checkpoint,
    Cosigner,
    log_origin,
    parse_cosignature,
    verify_cosignature,
)
from services.audit.heads import StoredHead, load_heads, read_heads_file
from services.audit.log import AnyRow, entry_of
from services.audit.models import CHAIN_COLUMNS, audit_events
from services.audit.settings import AuditSettings
from services.audit.tree_head import SignedTreeHead, key_id
from services.audit.verify import verify_log
from services.common import csv_safe
from services.common.kafka import read_to_end
from services.common.settings import KafkaConnection

e = audit_events
EVENT_FIELDS = (
    "seq", "id", "at", "actor", "actor_role", "action", "channel", "school_urn", "child_key",
    "notification_id", "purpose", "la_code", "review_id", "incident_id", "prev_hash", "hash",
    "recorded_at", "hash_version",
)  # fmt: skip
_EVENT_COLUMNS = [e.c[name] for name in EVENT_FIELDS]
_CSV_BATCH = 1000
_VERIFY_BATCH = 5000


@dataclass(frozen=True, slots=True)
class EventFilter:
    """The contract's filters; `to_at` is exclusive; `child_keys` matches any one of them."""

    school_urn: str | None = None
    actor: str | None = None
    child_key: str | None = None
    from_at: datetime | None = None
    to_at: datetime | None = None
    child_keys: tuple[str, ...] = ()

    def clauses(self, upto: int) -> list[ColumnElement[bool]]:
        """WHERE clauses for entries up to seq `upto` matching the filter."""
        out: list[ColumnElement[bool]] = [e.c.seq <= upto]
        for column, value in ((e.c.school_urn, self.school_urn), (e.c.actor, self.actor),
                              (e.c.child_key, self.child_key)):
            if value is not None:
                out.append(column == value)
        if self.child_keys:
            out.append(e.c.child_key.in_(self.child_keys))
        if self.from_at is not None:
            out.append(e.c.at >= self.from_at)
        if self.to_at is not None:
            out.append(e.c.at < self.to_at)
        return out


def encode_cursor(after: int, upto: int) -> str:
    """An opaque cursor: continue after seq `after` within the log as it stood at `upto`."""
    return base64.urlsafe_b64encode(f"v1:{after}:{upto}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(after, upto) of a cursor; ValueError if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("bad cursor") from exc
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "v1" or not all(p.isdigit() for p in parts[1:]):
        raise ValueError("bad cursor")
    return int(parts[1]), int(parts[2])


def _text(value: Any) -> Any:
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return format_timestamp(value)  # the spelling the chain hashes
    return str(value)


def event_json(row: AnyRow) -> dict[str, Any]:
    """One stored event as the API returns it."""
    return {name: _text(value) for name, value in zip(EVENT_FIELDS, row, strict=True)}


async def list_events(
    conn: AsyncConnection, flt: EventFilter, *, upto: int, after: int = 0, limit: int = 100
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of matching events in seq order, and the seq to continue after (if more)."""
    rows = (await conn.execute(
        select(*_EVENT_COLUMNS).where(*flt.clauses(upto), e.c.seq > after)
        .order_by(e.c.seq).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [event_json(r) for r in rows], (rows[-1].seq if more and rows else None)


async def csv_lines(engine: AsyncEngine, flt: EventFilter, *, upto: int) -> AsyncIterator[str]:
    """The matching events as CSV text, header first, streamed from a server-side cursor."""
    buffer = io.StringIO()
    writer = csv_safe.writer(buffer, lineterminator="\n")
    writer.writerow(EVENT_FIELDS)
    yield buffer.getvalue()
    async with engine.connect() as conn:
        result = await conn.stream(
            select(*_EVENT_COLUMNS).where(*flt.clauses(upto)).order_by(e.c.seq))
        async for batch in result.partitions(_CSV_BATCH):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([_text(v) for v in row] for row in batch)
            yield buffer.getvalue()


async def last_seq(conn: AsyncConnection) -> int:
    """The highest seq in the log (0 when empty)."""
    return int((await conn.execute(select(func.coalesce(func.max(e.c.seq), 0)))).scalar_one())


async def gather_heads(
    engine: AsyncEngine, heads_file: Path, *, key: str
) -> tuple[list[SignedTreeHead], int]:
    """Distinct heads of this key from the table and the file, and how many of other keys."""
    async with engine.connect() as conn:
        stored: list[StoredHead] = await load_heads(conn)
    stored += await asyncio.to_thread(read_heads_file, heads_file)
    mine: dict[tuple[object, ...], SignedTreeHead] = {}
    others: set[tuple[object, ...]] = set()
    for item in stored:
        h = item.signed.head
        identity = (h.tree_size, h.root_hash, h.timestamp, item.signed.signature)
        if item.key_id == key:
            mine[identity] = item.signed
        else:
            others.add(identity)
    return list(mine.values()), len(others)


async def read_cosignatures(
    kafka: KafkaConnection, topic: str, *, timeout_s: float = 10
) -> list[TreeHeadCosigned]:
    """Every cosignature on the topic now (a consumer without a group, read to the end)."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False,
                                isolation_level="read_committed")
    await asyncio.wait_for(consumer.start(), timeout_s)
    try:
        records = await asyncio.wait_for(read_to_end(consumer, topic), timeout_s)
    finally:
        await consumer.stop()
    out = []
    for record in records:
        with contextlib.suppress(ValueError):
            payload = parse_envelope(record.value, AUDIT_EVENT_TYPES).payload
            if isinstance(payload, TreeHeadCosigned):
                out.append(payload)
    return out


@dataclass
class _Witnessed:
    """Which checkpoints each configured witness validly cosigned, and how many lines failed."""

    witness: Cosigner
    sizes: set[int] = field(default_factory=set)
    invalid: int = 0


def _check_cosignatures(
    witnesses: Sequence[Cosigner], cosignatures: Sequence[TreeHeadCosigned], origin: str
) -> tuple[list[_Witnessed], dict[int, set[str]]]:
    seen = [_Witnessed(w) for w in witnesses]
    roots: dict[int, set[str]] = {}
    for item in cosignatures:
        if item.origin != origin:
            continue  # another log's
        checkpoint = Checkpoint(origin, item.tree_size, item.root_hash)
        for state in seen:
            try:
                named = parse_cosignature(item.cosignature)
            except ValueError:
                continue
            if (named.name, named.key_id) != (state.witness.name, state.witness.key_id):
                continue
            if verify_cosignature(checkpoint, item.cosignature, state.witness):
                state.sizes.add(item.tree_size)
                roots.setdefault(item.tree_size, set()).add(item.root_hash)
            else:
                state.invalid += 1
    return seen, roots


async def verify_stored_log(
    engine: AsyncEngine, *, public_key: Ed25519PublicKey, heads_file: Path,
    witnesses: Sequence[Cosigner] = (), cosignatures: Sequence[TreeHeadCosigned] = (),
) -> dict[str, Any]:
    """`verify_log` over the table streamed in seq order, off the event loop."""
    kid = key_id(public_key)
    heads, unchecked = await gather_heads(engine, heads_file, key=kid)
    witnessed, roots = _check_cosignatures(witnesses, cosignatures, log_origin(public_key))
    checkpoints = [(size, root) for size, found in roots.items() for root in found]
    loop = asyncio.get_running_loop()
    async with engine.connect() as conn:
        upto = await last_seq(conn)  # after the heads: every head read covers committed rows
        acks = await load_acknowledgements(conn, upto=upto)
        result = await conn.stream(
            select(*CHAIN_COLUMNS).where(e.c.seq <= upto).order_by(e.c.seq))
        batches = result.partitions(_VERIFY_BATCH)

        async def next_batch() -> Sequence[AnyRow] | None:
            try:
                return await batches.__anext__()
            except StopAsyncIteration:
                return None

        def entries() -> Iterator[AuditEntry]:
            while (batch := asyncio.run_coroutine_threadsafe(next_batch(), loop).result()):
                yield from (entry_of(row) for row in batch)

        outcome = await asyncio.to_thread(verify_log, entries(), heads, public_key,
                                          acknowledgements=acks, checkpoints=checkpoints)
    head_sizes = {h.head.tree_size for h in heads}
    cosigned = outcome.cosigned_sizes
    return {
        "ok": outcome.ok, "events": outcome.events, "head": outcome.head,
        "first_bad": None if outcome.first_bad is None else str(outcome.first_bad),
        "signed_events": outcome.signed_events, "reason": outcome.reason,
        "key_id": kid, "heads_checked": len(heads), "heads_other_keys": unchecked,
        "breaks": [{"seq": b.seq, "id": str(b.id), "reason": b.reason,
                    "acknowledgement": None if b.acknowledgement is None
                    else b.acknowledgement.as_json()} for b in outcome.breaks],
        "signing_blocked": bool(outcome.breaks) and outcome.breaks[-1].acknowledgement is None,
        "superseded_heads": list(outcome.superseded_heads),
        "witnesses": [{"name": w.witness.name, "key_id": w.witness.key_id.hex(),
                       "cosigned_heads": len(w.sizes & cosigned),
                       "largest_cosigned": max(w.sizes & cosigned, default=None),
                       "invalid_cosignatures": w.invalid} for w in witnessed],
        "heads_cosigned": len(head_sizes & cosigned),
        "latest_head_cosigned": bool(head_sizes) and max(head_sizes) in cosigned,
    }


async def verify_report(engine: AsyncEngine, config: AuditSettings) -> dict[str, Any]:
    """The verification report the API and `daybreak audit verify` give, cosignatures read
    from `audit-cosignatures.v1` when witnesses are configured (their absence is reported)."""
    witnesses = config.witnesses()
    cosignatures: list[TreeHeadCosigned] = []
    error = None
    if witnesses:
        try:
            cosignatures = await read_cosignatures(
                config.kafka(), config.topic(AUDIT_COSIGNATURES))
        except Exception as exc:  # verification of the log itself goes on
            error = f"cosignatures unreadable ({type(exc).__name__})"
    report = await verify_stored_log(engine, public_key=config.public_key(),
                                     heads_file=config.audit_heads_file, witnesses=witnesses,
                                     cosignatures=cosignatures)
    return report | {"cosignatures_error": error}
