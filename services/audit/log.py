"""Appending to the audit log, and the in-memory Merkle tree that mirrors it.

Appends are serialised by a transaction-scoped advisory lock: under it the last (seq, hash)
is read and the new entries are sealed after it, so two writers (the consumer, an export,
the CLI) can never give two entries one seq or fork the chain. The lock is released at
commit, so the caller's transaction decides whether the entries exist at all.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import Row, Uuid, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.disclosures import ContentPurged, DisclosureRecorded
from services.audit.breaks import (
    MISSING_LEAF,
    Acknowledgement,
    covering,
    load_acknowledgements,
)
from services.audit.chain import AuditEntry, ChainVerifier, EntryDraft, seal_entry
from services.audit.merkle import MerkleLog, leaf_hash
from services.audit.models import CHAIN_COLUMNS, audit_events
from services.common.db import any_of
from services.common.retention import RETENTION_ACTOR, purge_purpose

log = logging.getLogger(__name__)
APPEND_LOCK = zlib.crc32(b"daybreak:audit:append")
_REFRESH_BATCH = 5000
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Context:
    """The columns stored beside an entry's contract fields (hashed too since version 2)."""

    la_code: str | None = None
    review_id: uuid.UUID | None = None
    incident_id: uuid.UUID | None = None


def draft_of(event: DisclosureRecorded) -> tuple[EntryDraft, Context]:
    """The chain draft and the unhashed context of a disclosure event."""
    draft = EntryDraft(
        id=event.disclosure_id, at=event.at, actor=event.actor, actor_role=event.actor_role,
        action=event.action, channel=event.channel, school_urn=event.school_urn,
        child_key=event.child_key, notification_id=event.notification_id, purpose=event.purpose,
    )
    return draft, Context(event.la_code, event.review_id, event.incident_id)


def with_context(draft: EntryDraft, context: Context) -> EntryDraft:
    """The draft carrying its context's columns (a draft's own values stand if it has any)."""
    if context == Context():
        return draft
    return replace(draft, la_code=draft.la_code or context.la_code,
                   review_id=draft.review_id or context.review_id,
                   incident_id=draft.incident_id or context.incident_id)


def purge_draft(event: ContentPurged) -> tuple[EntryDraft, Context]:
    """The chain draft of a service's content purge (its purge_id is the entry's id)."""
    draft = EntryDraft(
        id=event.purge_id, at=event.at, actor=RETENTION_ACTOR, actor_role="system",
        action="retention.purge", channel=event.trigger, school_urn=None, child_key=None,
        notification_id=None, purpose=purge_purpose(event),
    )
    return draft, Context()


def entry_of(row: AnyRow) -> AuditEntry:
    """A stored entry from a row of CHAIN_COLUMNS."""
    return AuditEntry(**row._asdict())


async def last_entry(conn: AsyncConnection) -> AuditEntry | None:
    """The entry with the highest seq, or None for an empty log."""
    row = (await conn.execute(
        select(*CHAIN_COLUMNS).order_by(audit_events.c.seq.desc()).limit(1))).first()
    return None if row is None else entry_of(row)


async def append_entries(
    conn: AsyncConnection, items: Sequence[tuple[EntryDraft, Context]]
) -> list[AuditEntry]:
    """Seal and insert entries in the caller's transaction; ids already logged are skipped."""
    await conn.execute(select(func.pg_advisory_xact_lock(APPEND_LOCK)))
    ids = [draft.id for draft, _ in items]
    known = set((await conn.execute(
        select(audit_events.c.id).where(audit_events.c.id == any_of(ids, of=Uuid)))).scalars())
    previous = await last_entry(conn)
    # the transaction's time, what the column's default would give, but now in the hash
    recorded_at = (await conn.execute(select(func.now()))).scalar_one()
    sealed: list[AuditEntry] = []
    rows: list[dict[str, object]] = []
    for draft, context in items:
        if draft.id in known:
            continue
        known.add(draft.id)
        previous = seal_entry(with_context(draft, context), previous=previous,
                              recorded_at=recorded_at)
        sealed.append(previous)
        rows.append({c.name: getattr(previous, c.name) for c in CHAIN_COLUMNS})
    if rows:
        await conn.execute(insert(audit_events), rows)
    return sealed


async def append_entry(
    conn: AsyncConnection, draft: EntryDraft, context: Context | None = None
) -> AuditEntry | None:
    """Append one entry; None if its id is already in the log (a redelivery)."""
    sealed = await append_entries(conn, [(draft, context or Context())])
    return sealed[0] if sealed else None


def access_draft(
    *, actor: str, actor_role: str, action: str, channel: str, purpose: str, at: datetime,
    child_key: str | None = None, school_urn: str | None = None,
) -> EntryDraft:
    """A draft for something the audit service itself discloses (exports, subject access)."""
    return EntryDraft(
        id=uuid.uuid4(), at=at, actor=actor, actor_role=actor_role, action=action,
        channel=channel, school_urn=school_urn, child_key=child_key, notification_id=None,
        purpose=purpose,
    )


class TreeCache:
    """The Merkle tree over the committed entries, chain-checked as it grows.

    Entries are noted after their commit; anything missed (another process appended, or
    commits finished out of order) is read back by `refresh`. A chain fault stops the tree
    growing, so no head is ever signed over a log that does not verify, until an operator's
    acknowledgement of that very row (`breaks.py`) is in the log: then the row is taken as it
    stands and the tree grows on.
    """

    def __init__(self) -> None:
        self.tree = MerkleLog()
        self.broken: str | None = None
        self.crossed: list[Acknowledgement] = []
        self._stuck: AuditEntry | None = None
        self._chain = ChainVerifier()
        self._lock = asyncio.Lock()

    @property
    def size(self) -> int:
        """How many entries the tree holds."""
        return self.tree.size

    def note(self, entry: AuditEntry) -> None:
        """Add a just-committed entry if it is the next one; otherwise leave it to refresh."""
        if self.broken is None and entry.seq == self.size + 1:
            self._add(entry)

    async def refresh(self, engine: AsyncEngine) -> None:
        """Read and check every committed entry the tree does not hold yet."""
        async with self._lock:
            while True:
                if self._stuck is not None and not await self._cross(engine, self._stuck):
                    return
                async with engine.connect() as conn:
                    rows = (await conn.execute(
                        select(*CHAIN_COLUMNS).where(audit_events.c.seq > self.size)
                        .order_by(audit_events.c.seq).limit(_REFRESH_BATCH))).all()
                for row in rows:
                    if row.seq <= self.size:
                        continue  # noted while this batch was read
                    if not self._add(entry_of(row)):
                        break
                if self._stuck is None and len(rows) < _REFRESH_BATCH:
                    return
                await asyncio.sleep(0)

    def _add(self, entry: AuditEntry) -> bool:
        reason = self._chain.check(entry)
        if reason is not None:
            self.broken, self._stuck = reason, entry
            log.error("audit chain broken; no further tree heads until the break is "
                      "acknowledged", extra={"reason": reason, "seq": entry.seq})
            return False
        self.tree.append(leaf_hash(bytes.fromhex(entry.hash)))
        return True

    async def _cross(self, engine: AsyncEngine, entry: AuditEntry) -> bool:
        """Take the stuck entry as it stands if an acknowledgement covers it."""
        async with engine.connect() as conn:
            acks = await load_acknowledgements(conn, after_seq=entry.seq)
        ack = covering(acks, entry)
        if ack is None:
            return False
        for _ in range(self._chain.cross(entry)):
            self.tree.append(leaf_hash(MISSING_LEAF))
        self.tree.append(leaf_hash(bytes.fromhex(entry.hash)))
        self.crossed.append(ack)
        self.broken, self._stuck = None, None
        log.warning("acknowledged audit chain break crossed",
                    extra={"seq": entry.seq, "ack_seq": ack.ack_seq})
        return True
