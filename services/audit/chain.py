"""Canonical encoding and SHA-256 hash chain of audit entries, and the chain check.

Canonical JSON (what `hash_entry` hashes) is RFC 8785 (JCS) for the value types an audit
entry holds: object keys sorted, no insignificant whitespace, UTF-8 bytes, strings escaped
as JSON.stringify does (only `"`, `\\` and C0 controls, as short escapes or lowercase
\\u00xx; lone surrogates refused), integers within ±(2**53 - 1) in plain decimal, null,
true and false. Two project types are given one spelling each: a UUID is its lowercase
hyphenated string and a datetime must be timezone-aware and is written in UTC as RFC 3339
with microseconds and 'Z' (`2025-01-31T07:05:00.000000Z`). Floats and any other type are
refused, because JCS's number form is the one place Python's json module differs from it.

Each entry's hash is SHA-256 over the canonical JSON of its fields including `prev_hash`,
the previous entry's hash (64 zeros for the first). The chain is deliberately unkeyed: an
HMAC key would have to live beside the writer, so whoever can rewrite rows could also
re-key the chain, and auditors could not check it without the secret. Instead the Merkle
tree over the entry hashes is committed by Ed25519-signed tree heads whose private key is
held outside the database (`tree_head.py`); anyone with the public key can verify, and a
chain recomputed after an edit no longer matches the heads already signed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "id", "at", "actor", "actor_role", "action", "channel", "school_urn", "child_key",
    "notification_id", "purpose", "prev_hash",
)  # fmt: skip
_DRAFT_FIELDS = HASHED_FIELDS[:-1]
_MAX_SAFE_INT = 2**53 - 1


class ChainedEntry(Protocol):
    """What the chain reads from a stored audit row (ORM rows fit as they are)."""

    @property
    def seq(self) -> int: ...
    @property
    def id(self) -> UUID: ...
    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def actor_role(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def school_urn(self) -> str | None: ...
    @property
    def child_key(self) -> str | None: ...
    @property
    def notification_id(self) -> UUID | None: ...
    @property
    def purpose(self) -> str: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """The facts of one disclosure, before it is given a place in the chain."""

    id: UUID
    at: datetime
    actor: str
    actor_role: str
    action: str
    channel: str | None
    school_urn: str | None
    child_key: str | None
    notification_id: UUID | None
    purpose: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One sealed audit log entry: its position, hashed fields and hash."""

    seq: int
    id: UUID
    at: datetime
    actor: str
    actor_role: str
    action: str
    channel: str | None
    school_urn: str | None
    child_key: str | None
    notification_id: UUID | None
    purpose: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainResult:
    """Outcome of a chain check over the longest prefix that verified."""

    ok: bool
    events: int
    head: str
    first_bad: UUID | None
    reason: str | None = None


def format_timestamp(value: datetime) -> str:
    """Write an aware datetime as RFC 3339 UTC with microseconds and 'Z'."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _plain(value: object) -> object:
    """Map a value onto the JSON types with exactly one canonical spelling."""
    if type(value) is str or value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)  # a StrEnum member is spelled as its value
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise ValueError("integers beyond 2**53 - 1 are not JCS-safe")
        return int.__int__(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, Mapping):
        return _plain_mapping(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise TypeError(f"no canonical JSON form for {type(value).__name__}")


def _plain_mapping(value: Mapping[str, object]) -> dict[str, object]:
    plain: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError("canonical JSON object keys must be strings")
        plain[str.__str__(key)] = item if type(item) is str or item is None else _plain(item)
    return plain


def canonical_json(value: Mapping[str, object]) -> bytes:
    """Return the canonical (JCS-compatible) UTF-8 JSON bytes of a mapping."""
    plain = _plain_mapping(value)
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def entry_fields(entry: ChainedEntry) -> dict[str, object]:
    """Return the hashed fields of a stored entry (everything but seq and hash)."""
    return {name: getattr(entry, name) for name in HASHED_FIELDS}


def hash_entry(fields: Mapping[str, object], prev_hash: str) -> str:
    """Return the hex SHA-256 of an entry's canonical fields chained to prev_hash."""
    if fields.get("prev_hash", prev_hash) != prev_hash:
        raise ValueError("fields carry a different prev_hash")
    hashed = {name: fields[name] for name in HASHED_FIELDS if name != "prev_hash"}
    hashed["prev_hash"] = prev_hash
    return hashlib.sha256(canonical_json(hashed)).hexdigest()


def seal_entry(draft: EntryDraft, *, previous: ChainedEntry | None) -> AuditEntry:
    """Chain a new entry after `previous` (None for the first entry of the log)."""
    prev_hash = GENESIS_HASH if previous is None else previous.hash
    seq = 1 if previous is None else previous.seq + 1
    d = draft
    digest = hash_entry({name: getattr(d, name) for name in _DRAFT_FIELDS}, prev_hash)
    return AuditEntry(
        seq, d.id, d.at, d.actor, d.actor_role, d.action, d.channel, d.school_urn,
        d.child_key, d.notification_id, d.purpose, prev_hash, digest,
    )  # fmt: skip


class ChainVerifier:
    """Checks entries one at a time, in seq order, remembering the verified prefix."""

    __slots__ = ("events", "head")

    def __init__(self) -> None:
        self.events = 0
        self.head = GENESIS_HASH

    def check(self, entry: ChainedEntry) -> str | None:
        """Accept the next entry, or return why it breaks the chain."""
        expected = self.events + 1
        if entry.seq > expected:
            return f"seq {expected} missing: entry seq {entry.seq} follows seq {self.events}"
        if entry.seq < expected:
            return f"entry seq {entry.seq} out of order: expected seq {expected}"
        if entry.prev_hash != self.head:
            return f"seq {entry.seq}: prev_hash does not link to the previous entry"
        if hash_entry(entry_fields(entry), entry.prev_hash) != entry.hash:
            return f"seq {entry.seq}: hash does not match the entry's contents"
        self.events = expected
        self.head = entry.hash
        return None


def verify_chain(entries: Iterable[ChainedEntry]) -> ChainResult:
    """Verify entries in seq order; name the first one that is edited, unlinked or misplaced."""
    verifier = ChainVerifier()
    for entry in entries:
        reason = verifier.check(entry)
        if reason is not None:
            return ChainResult(False, verifier.events, verifier.head, entry.id, reason)
    return ChainResult(True, verifier.events, verifier.head, None)
