"""Whole-log verification: the hash chain, the Merkle tree and every signed tree head.

Entries are streamed once in seq order. Each is chain-checked (an edited row fails its own
hash, a deleted row leaves a seq gap or a broken prev_hash link, a moved row breaks both),
then its hash becomes the next Merkle leaf, leaf_bytes = the 32 raw bytes of entry.hash.
When the tree reaches a signed head's size, the recomputed root must equal the head's root
and the signature must verify under the public key.

Naming the first bad event: a chain fault names the entry where it is seen. A head that
fails means the entries it covers were rewritten consistently by someone without the
signing key (recomputing hashes and links), which the chain alone cannot see; the leaves it
signed are gone, so the earliest possibly-altered event cannot be pinned down further than
"after the last head that verified": first_bad is the first entry in (last good head size,
bad head size]. A head larger than the log means entries were cut from its end; there is
no row left to name, so first_bad is None and `reason` says how many are missing.

`events` and `head` describe the longest prefix that verified; `signed_events` is the size
of the largest head that verified, so entries after it are chain-checked only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.chain import GENESIS_HASH, ChainedEntry, ChainVerifier
from services.audit.merkle import MerkleFrontier, leaf_hash
from services.audit.tree_head import SignedTreeHead, verify_tree_head


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of verifying the log against its signed tree heads."""

    ok: bool
    events: int
    head: str
    first_bad: UUID | None
    reason: str | None = None
    signed_events: int = 0


def _head_problem(signed: SignedTreeHead, root: bytes, public_key: Ed25519PublicKey) -> str | None:
    """Return why a signed head does not vouch for this root, or None if it does."""
    head = signed.head
    if not verify_tree_head(head, signed.signature, public_key):
        return f"tree head at size {head.tree_size}: signature does not verify"
    if head.root_hash != root.hex():
        return f"tree head at size {head.tree_size}: root differs from the entries' tree"
    return None


class _HeadCursor:
    """Signed heads in size order, checked as the tree grows past each one."""

    def __init__(self, heads: Iterable[SignedTreeHead], public_key: Ed25519PublicKey) -> None:
        ordered = sorted(heads, key=lambda s: s.head.tree_size)
        self._heads: Iterator[SignedTreeHead] = iter(ordered)
        self._next = next(self._heads, None)
        self._key = public_key
        self.good_size = 0
        self.good_hash = GENESIS_HASH

    def check_at(self, size: int, root: Callable[[], bytes], entry_hash: str) -> str | None:
        """Check every head of exactly this size (or below, which cannot match any)."""
        while self._next is not None and self._next.head.tree_size <= size:
            if self._next.head.tree_size < size:
                return f"tree head with impossible size {self._next.head.tree_size}"
            problem = _head_problem(self._next, root(), self._key)
            if problem is not None:
                return problem
            self.good_size, self.good_hash = size, entry_hash
            self._next = next(self._heads, None)
        return None

    def beyond(self) -> int | None:
        """Return the size of a head the log never reached, if any."""
        return None if self._next is None else self._next.head.tree_size


def verify_log(
    entries: Iterable[ChainedEntry],
    tree_heads: Iterable[SignedTreeHead],
    public_key: Ed25519PublicKey,
) -> VerifyResult:
    """Verify chain, Merkle roots and signatures; name the first bad event."""
    chain, tree = ChainVerifier(), MerkleFrontier()
    heads = _HeadCursor(tree_heads, public_key)
    first_unsigned: UUID | None = None
    problem = heads.check_at(0, tree.root, GENESIS_HASH)
    if problem is not None:
        return VerifyResult(False, 0, GENESIS_HASH, None, problem)
    for entry in entries:
        reason = chain.check(entry)
        if reason is not None:
            return VerifyResult(False, chain.events, chain.head, entry.id, reason, heads.good_size)
        if chain.events == heads.good_size + 1:
            first_unsigned = entry.id
        tree.append(leaf_hash(bytes.fromhex(entry.hash)))
        problem = heads.check_at(chain.events, tree.root, chain.head)
        if problem is not None:
            good = heads.good_size
            return VerifyResult(False, good, heads.good_hash, first_unsigned, problem, good)
    missing = heads.beyond()
    if missing is not None:
        reason = f"signed head covers {missing} events but the log holds {chain.events}"
        return VerifyResult(False, chain.events, chain.head, None, reason, heads.good_size)
    return VerifyResult(True, chain.events, chain.head, None, None, heads.good_size)
