"""Inclusion and consistency proofs against signed tree heads (RFC 9162), from the tree cache."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from sqlalchemy import select

from services.audit.handlers import AuditDeps
from services.audit.heads import StoredHead, head_of, latest_head
from services.audit.merkle import leaf_hash
from services.audit.models import audit_events, audit_tree_heads
from services.audit.tree_head import public_key_raw
from services.common.problems import Problem


async def _tree_matching(deps: AuditDeps, *heads: StoredHead) -> None:
    """Bring the tree up to date and make sure it reproduces every head's root."""
    await deps.tree.refresh(deps.engine)
    tree = deps.tree.tree
    for head in heads:
        if tree.size < head.tree_size or tree.root(head.tree_size).hex() != (
            head.signed.head.root_hash
        ):
            raise Problem(409, "Log does not match its signed head",
                          "The stored log no longer reproduces a signed head; "
                          "see GET /v1/audit/verify.")


def _signed(deps: AuditDeps, head: StoredHead) -> dict[str, Any]:
    public = base64.b64encode(public_key_raw(deps.signer.private_key.public_key())).decode()
    return head.as_json() | {"public_key": public}


async def inclusion(deps: AuditDeps, entry_id: uuid.UUID) -> dict[str, Any]:
    """The proof that an entry is in the latest signed head (signing one if none covers it)."""
    async with deps.engine.connect() as conn:
        row = (await conn.execute(select(audit_events.c.seq, audit_events.c.hash).where(
            audit_events.c.id == entry_id))).first()
        if row is None:
            raise Problem(404, "Not found", "No audit event has that id.")
        head = await latest_head(conn, key=deps.signer.key_id)
    if head is None or head.tree_size < row.seq:
        head = await deps.signer.sign_now()
    if head is None or head.tree_size < row.seq:
        raise Problem(409, "Not signed yet", "No signed tree head covers this event yet.")
    await _tree_matching(deps, head)
    index, leaf = row.seq - 1, leaf_hash(bytes.fromhex(row.hash))
    if deps.tree.tree.leaf(index) != leaf:
        raise Problem(409, "Log does not match its signed head",
                      "This event differs from the one the tree holds; see GET /v1/audit/verify.")
    proof = deps.tree.tree.inclusion_proof(index, head.tree_size)
    return {
        "id": str(entry_id), "seq": row.seq, "leaf_index": index, "entry_hash": row.hash,
        "leaf_hash": leaf.hex(), "tree_size": head.tree_size,
        "root_hash": head.signed.head.root_hash, "proof": [p.hex() for p in proof],
        "signed_head": _signed(deps, head),
    }


async def consistency(deps: AuditDeps, first: int, second: int) -> dict[str, Any]:
    """The proof that the signed head of size `first` is a prefix of the one of size `second`."""
    if not 0 < first <= second:
        raise Problem(422, "Invalid sizes", "Need 0 < from <= to.")
    t = audit_tree_heads
    async with deps.engine.connect() as conn:
        rows = (await conn.execute(
            select(t.c.tree_size, t.c.root_hash, t.c.signed_at, t.c.signature, t.c.key_id)
            .where(t.c.key_id == deps.signer.key_id, t.c.tree_size.in_((first, second))))).all()
    heads = {row.tree_size: head_of(*row) for row in rows}
    missing = [size for size in (first, second) if size not in heads]
    if missing:
        raise Problem(404, "Not found", f"No signed tree head of size {missing[0]}.")
    await _tree_matching(deps, heads[first], heads[second])
    proof = deps.tree.tree.consistency_proof(first, second)
    return {
        "from": first, "to": second, "from_root": heads[first].signed.head.root_hash,
        "to_root": heads[second].signed.head.root_hash, "proof": [p.hex() for p in proof],
        "from_head": _signed(deps, heads[first]), "to_head": _signed(deps, heads[second]),
    }
