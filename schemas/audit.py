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
