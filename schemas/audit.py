"""Audit events: the signed heads of the audit log's Merkle tree."""

from __future__ import annotations

from pydantic import AwareDatetime

from schemas.envelope import EventPayload


class TreeHeadSigned(EventPayload):
    """A signed tree head, as published on `audit-heads.v1`."""

    event_type = "TreeHeadSigned"
    tree_size: int
    root_hash: str
    signed_at: AwareDatetime
    key_id: str
    signature: str


class TreeHeadCosigned(EventPayload):
    """A witness's cosignature over a signed tree head, as published on
    `audit-cosignatures.v1`: the checkpoint it cosigned (C2SP tlog-checkpoint: origin, size,
    root) and its C2SP tlog-cosignature/v1 note signature line,
    `— <witness name> base64(key id ‖ timestamp ‖ Ed25519 signature)`."""

    event_type = "TreeHeadCosigned"
    origin: str
    tree_size: int
    root_hash: str
    cosignature: str


# the audit topics' own payloads (their readers parse nothing else)
AUDIT_EVENT_TYPES: dict[tuple[str, int], type[EventPayload]] = {
    (cls.event_type, cls.event_version): cls for cls in (TreeHeadSigned, TreeHeadCosigned)
}
