"""The audit consumer (one transaction per poll) and the service's own disclosures."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.disclosures import ContentPurged, DisclosureRecorded
from schemas.envelope import Envelope, parse_envelope
from schemas.registry import EVENT_TYPES
from services.audit.chain import AuditEntry, EntryDraft
from services.audit.heads import HeadSigner
from services.audit.log import (
    Context,
    TreeCache,
    access_draft,
    append_entries,
    append_entry,
    draft_of,
    purge_draft,
)
from services.common.db import UnitOfWork
from services.common.kafka import dispatch_record
from services.common.security import Principal

log = logging.getLogger(__name__)


@dataclass
class AuditDeps:
    """What the consumer and the API need, wired in main.py."""

    engine: AsyncEngine
    tree: TreeCache
    signer: HeadSigner
    clock: Callable[[], datetime]
    on_appended: Callable[[str], None] = lambda source: None

    def committed(self, entry: AuditEntry, source: str) -> None:
        """Tell the tree and the signer about an entry whose transaction committed."""
        self.tree.note(entry)
        self.signer.appended()
        self.on_appended(source)


async def on_disclosure_recorded(envelope: Envelope[Any], *, deps: AuditDeps) -> None:
    """Append the disclosure; a redelivered one (same disclosure_id) is skipped."""
    event: DisclosureRecorded = envelope.payload
    draft, context = draft_of(event)
    async with UnitOfWork(deps.engine) as uow:
        entry = await append_entry(uow.conn, draft, context)
        await uow.commit()
    if entry is not None:
        deps.committed(entry, "kafka")


async def on_content_purged(envelope: Envelope[Any], *, deps: AuditDeps) -> None:
    """Record a service's purge; a redelivered one (same purge_id) is skipped."""
    async with UnitOfWork(deps.engine) as uow:
        entry = await append_entry(uow.conn, *purge_draft(envelope.payload))
        await uow.commit()
    if entry is not None:
        deps.committed(entry, "kafka")


def _draft(payload: Any) -> tuple[EntryDraft, Context] | None:
    if isinstance(payload, DisclosureRecorded):
        return draft_of(payload)
    if isinstance(payload, ContentPurged):
        return purge_draft(payload)
    return None


async def on_disclosures(records: list[ConsumerRecord[bytes, bytes]], *, deps: AuditDeps) -> None:
    """Append a whole poll of disclosures and purges in one transaction (ids already logged
    skipped)."""
    envelopes = [parse_envelope(r.value, EVENT_TYPES) for r in records]
    drafts = [d for e in envelopes if (d := _draft(e.payload)) is not None]
    if not drafts:
        return
    async with UnitOfWork(deps.engine) as uow:
        sealed = await append_entries(uow.conn, drafts)
        await uow.commit()
    for entry in sealed:
        deps.committed(entry, "kafka")


HANDLERS: dict[str, Callable[..., Awaitable[None]]] = {
    "DisclosureRecorded": on_disclosure_recorded,
    "ContentPurged": on_content_purged,
}


async def handle_record(record: ConsumerRecord[bytes, bytes], *, deps: AuditDeps) -> None:
    """Dispatch one consumed record to its handler."""
    await dispatch_record(record, HANDLERS, deps=deps)


async def record_access(
    deps: AuditDeps, principal: Principal, *, action: str, channel: str, purpose: str,
    child_key: str | None = None, school_urn: str | None = None,
) -> int:
    """Log what the audit service is about to disclose; returns the seq the answer covers.

    Fails closed: the entry commits before anything is shown, and the answer covers the
    log as it stood before this entry.
    """
    draft = access_draft(
        actor=principal.subject, actor_role=principal.role, action=action, channel=channel,
        purpose=purpose, at=deps.clock(), child_key=child_key, school_urn=school_urn,
    )
    async with UnitOfWork(deps.engine) as uow:
        entry = await append_entry(uow.conn, draft)
        await uow.commit()
    assert entry is not None  # a fresh uuid4 cannot be in the log
    deps.committed(entry, "api")
    return entry.seq - 1
