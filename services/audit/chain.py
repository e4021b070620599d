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
the previous entry's hash (64 zeros for the first). Which fields depends on the row's
`hash_version`: version 1 (entries written before migration 0017) covers the contract's
fields (`HASHED_FIELDS_V1`); version 2 (every entry since) covers every column the row
carries but `seq` and `hash` (`HASHED_FIELDS_V2`: `la_code`, `review_id`, `incident_id`,
`recorded_at` and `hash_version` itself too). Versions never go down along the chain, so a
version-2 row cannot be passed off as version 1 to leave its context out of the hash.

The chain is deliberately unkeyed: an HMAC key would have to live beside the writer, so
whoever can rewrite rows could also re-key the chain, and auditors could not check it
without the secret. Instead the Merkle tree over the entry hashes is committed by
Ed25519-signed tree heads whose private key is held outside the database (`tree_head.py`);
anyone with the public key can verify, and a chain recomputed after an edit no longer
matches the heads already signed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

GENESIS_HASH = "0" * 64
HASHED_FIELDS_V1 = (
    "id", "at", "actor", "actor_role", "action", "channel", "school_urn", "child_key",
    "notification_id", "purpose", "prev_hash",
)  # fmt: skip
HASHED_FIELDS_V2 = (
    *HASHED_FIELDS_V1[:-1], "la_code", "review_id", "incident_id", "recorded_at",
    "hash_version", "prev_hash",
)  # fmt: skip
HASHED_FIELDS = HASHED_FIELDS_V1  # the contract's fields, hashed by every version
HASH_VERSIONS: dict[int, tuple[str, ...]] = {1: HASHED_FIELDS_V1, 2: HASHED_FIELDS_V2}
CURRENT_HASH_VERSION = 2
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
    @property
    def la_code(self) -> str | None: ...
    @property
    def review_id(self) -> UUID | None: ...
    @property
    def incident_id(self) -> UUID | None: ...
    @property
    def recorded_at(self) -> datetime | None: ...
    @property
    def hash_version(self) -> int: ...


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
    la_code: str | None = None
    review_id: UUID | None = None
    incident_id: UUID | None = None


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
    la_code: str | None = None
    review_id: UUID | None = None
    incident_id: UUID | None = None
    recorded_at: datetime | None = None
    hash_version: int = 1


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


def hashed_fields(version: object) -> tuple[str, ...]:
    """The fields a hash version covers; ValueError for a version this code does not know."""
    if type(version) is not int or version not in HASH_VERSIONS:
        raise ValueError(f"unknown hash version {version!r}")
    return HASH_VERSIONS[version]


def entry_fields(entry: ChainedEntry) -> dict[str, object]:
    """Return the fields a stored entry's hash version covers (never seq and hash)."""
    return {name: getattr(entry, name) for name in hashed_fields(entry.hash_version)}


def hash_entry(fields: Mapping[str, object], prev_hash: str) -> str:
    """Return the hex SHA-256 of an entry's canonical fields chained to prev_hash.

    The fields' `hash_version` (1 when absent, as version-1 fields do not carry it) picks
    which of them are hashed."""
    if fields.get("prev_hash", prev_hash) != prev_hash:
        raise ValueError("fields carry a different prev_hash")
    names = hashed_fields(fields.get("hash_version", 1))
    hashed = {name: fields[name] for name in names if name != "prev_hash"}
    hashed["prev_hash"] = prev_hash
    return hashlib.sha256(canonical_json(hashed)).hexdigest()


def seal_entry(
    draft: EntryDraft, *, previous: ChainedEntry | None, recorded_at: datetime | None = None,
    hash_version: int = CURRENT_HASH_VERSION,
) -> AuditEntry:
    """Chain a new entry after `previous` (None for the first entry of the log).

    `recorded_at` is when the log takes the entry (the writer's transaction time; the
    disclosure's own time when not given)."""
    prev_hash = GENESIS_HASH if previous is None else previous.hash
    seq = 1 if previous is None else previous.seq + 1
    d = draft
    entry = AuditEntry(
        seq, d.id, d.at, d.actor, d.actor_role, d.action, d.channel, d.school_urn,
        d.child_key, d.notification_id, d.purpose, prev_hash, "", d.la_code, d.review_id,
        d.incident_id, d.at if recorded_at is None else recorded_at, hash_version,
    )  # fmt: skip
    return replace(entry, hash=hash_entry(entry_fields(entry), prev_hash))


class ChainVerifier:
    """Checks entries one at a time, in seq order, remembering the verified prefix."""

    __slots__ = ("events", "head", "version")

    def __init__(self) -> None:
        self.events = 0
        self.head = GENESIS_HASH
        self.version = 1

    def check(self, entry: ChainedEntry) -> str | None:
        """Accept the next entry, or return why it breaks the chain."""
        expected = self.events + 1
        if entry.seq > expected:
            return f"seq {expected} missing: entry seq {entry.seq} follows seq {self.events}"
        if entry.seq < expected:
            return f"entry seq {entry.seq} out of order: expected seq {expected}"
        if entry.prev_hash != self.head:
            return f"seq {entry.seq}: prev_hash does not link to the previous entry"
        if entry.hash_version not in HASH_VERSIONS:
            return f"seq {entry.seq}: unknown hash version {entry.hash_version}"
        if entry.hash_version < self.version:
            return (f"seq {entry.seq}: hash version {entry.hash_version} after version "
                    f"{self.version}")
        if hash_entry(entry_fields(entry), entry.prev_hash) != entry.hash:
            return f"seq {entry.seq}: hash does not match the entry's contents"
        self.events = expected
        self.head = entry.hash
        self.version = entry.hash_version
        return None

    def cross(self, entry: ChainedEntry) -> int:
        """Take an acknowledged bad entry as it stands; returns how many seqs it skips."""
        missing = max(entry.seq - self.events - 1, 0)
        self.events = entry.seq
        self.head = entry.hash
        if entry.hash_version in HASH_VERSIONS:
            self.version = max(self.version, entry.hash_version)
        return missing


def verify_chain(entries: Iterable[ChainedEntry]) -> ChainResult:
    """Verify entries in seq order; name the first one that is edited, unlinked or misplaced."""
    verifier = ChainVerifier()
    for entry in entries:
        reason = verifier.check(entry)
        if reason is not None:
            return ChainResult(False, verifier.events, verifier.head, entry.id, reason)
    return ChainResult(True, verifier.events, verifier.head, None)
