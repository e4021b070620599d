"""Acknowledged breaks: an operator's audited way past one bad row that hides nothing.

A chain fault (an edited row, a row forged straight into the table, a deleted one) stops the
tree growing, so no head is signed over a log that does not verify, and without a way past
it a single bad row would stop head signing for good. An acknowledgement is an ordinary,
hash-chained entry (`action = ACK_ACTION`) appended after the break, naming the bad row by
its seq and by the hash it is stored with. From then on the tree, the signer and
verification take that row as it stands: its stored hash becomes its leaf (a row missing in
front of it, an all-zero leaf) and the chain carries on from it. Nothing is deleted or
rewritten, and verification still fails and still names the row as `first_bad`, with the
acknowledgement beside it. An acknowledgement covers exactly one state of one row: if the
row is changed again its stored hash no longer matches and the break is open again.

The acknowledgement's details travel in its `purpose`, which is hashed: `ACK_PURPOSE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.audit.chain import ChainedEntry
from services.audit.models import audit_events

ACK_ACTION = "audit.break.acknowledged"
ACK_PURPOSE = "break at seq {seq} acknowledged, row stored with hash {hash}: {reason}"
_ACK = re.compile(r"break at seq (\d+) acknowledged, row stored with hash ([0-9a-f]{64}): (.*)",
                  re.DOTALL)
REASON_MIN, REASON_MAX = 10, 500
MISSING_LEAF = bytes(32)  # a row missing in front of an acknowledged one: no entry hashes so


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """An operator's acknowledgement of the break at one row, as it is stored in the log."""

    seq: int  # the bad row's
    entry_hash: str  # the bad row's stored hash when it was acknowledged
    reason: str
    ack_id: UUID
    ack_seq: int
    at: datetime
    actor: str

    def covers(self, entry: ChainedEntry) -> bool:
        """Whether this acknowledges `entry` as it is stored now."""
        return entry.seq == self.seq and entry.hash == self.entry_hash and self.ack_seq > self.seq

    def as_json(self) -> dict[str, object]:
        """The acknowledgement as verification reports it."""
        return {"id": str(self.ack_id), "seq": self.ack_seq, "at": self.at.isoformat(),
                "actor": self.actor, "reason": self.reason}


def check_reason(reason: str) -> str:
    """An operator's reason: one printable line of 10 to 500 characters (no child data)."""
    reason = reason.strip()
    if not REASON_MIN <= len(reason) <= REASON_MAX or not reason.isprintable():
        raise ValueError(f"the reason must be one printable line of {REASON_MIN} to "
                         f"{REASON_MAX} characters")
    return reason


def ack_purpose(seq: int, entry_hash: str, reason: str) -> str:
    """The purpose an acknowledgement entry is written with."""
    return ACK_PURPOSE.format(seq=seq, hash=entry_hash, reason=check_reason(reason))


async def load_acknowledgements(
    conn: AsyncConnection, *, after_seq: int = 0, upto: int | None = None
) -> dict[int, list[Acknowledgement]]:
    """Every acknowledgement entry in the log after `after_seq`, by the seq it acknowledges."""
    e = audit_events
    query = (select(e.c.seq, e.c.id, e.c.at, e.c.actor, e.c.purpose)
             .where(e.c.action == ACK_ACTION, e.c.seq > after_seq).order_by(e.c.seq))
    if upto is not None:
        query = query.where(e.c.seq <= upto)
    found: dict[int, list[Acknowledgement]] = {}
    for row in (await conn.execute(query)).all():
        match = _ACK.fullmatch(row.purpose)
        if match is None:
            continue
        seq = int(match[1])
        found.setdefault(seq, []).append(Acknowledgement(
            seq, match[2], match[3], row.id, row.seq, row.at, row.actor))
    return found


def covering(acks: dict[int, list[Acknowledgement]], entry: ChainedEntry
             ) -> Acknowledgement | None:
    """The first acknowledgement that covers this entry as it is stored, if any."""
    return next((a for a in acks.get(entry.seq, ()) if a.covers(entry)), None)
