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

Acknowledged breaks (`breaks.py`): a chain fault at a row that an acknowledgement later in
the log covers is listed in `breaks` with it, and checking goes on past the row as it
stands, as the signer does; the log still does not verify and `first_bad` still names the
first bad row. A head signed before the acknowledgement over the row's old contents can no
longer be reproduced: it is listed in `superseded_heads` instead of stopping the check, and
only if its signature holds. Verification stops at the first break nobody acknowledged.

Witness cosignatures (`witness.py`) whose signatures verified are checked as tree heads
are, against the root the entries give at their size (`cosigned_sizes`: those that match).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.breaks import MISSING_LEAF, Acknowledgement, covering
from services.audit.chain import GENESIS_HASH, ChainedEntry, ChainVerifier
from services.audit.merkle import MerkleFrontier, leaf_hash
from services.audit.tree_head import SignedTreeHead, verify_tree_head


@dataclass(frozen=True, slots=True)
class Break:
    """A chain fault at one row, and the acknowledgement that covers it (if any)."""

    seq: int
    id: UUID
    reason: str
    acknowledgement: Acknowledgement | None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of verifying the log against its signed tree heads."""

    ok: bool
    events: int
    head: str
    first_bad: UUID | None
    reason: str | None = None
    signed_events: int = 0
    breaks: tuple[Break, ...] = ()
    superseded_heads: tuple[int, ...] = ()
    cosigned_sizes: frozenset[int] = field(default_factory=frozenset)


def _head_problem(signed: SignedTreeHead, root: bytes, public_key: Ed25519PublicKey) -> str | None:
    """Return why a signed head does not vouch for this root, or None if it does."""
    head = signed.head
    if not verify_tree_head(head, signed.signature, public_key):
        return f"tree head at size {head.tree_size}: signature does not verify"
    if head.root_hash != root.hex():
        return f"tree head at size {head.tree_size}: root differs from the entries' tree"
    return None


class _HeadCursor:
    """Signed heads and cosigned checkpoints in size order, checked as the tree grows."""

    def __init__(self, heads: Iterable[SignedTreeHead], public_key: Ed25519PublicKey,
                 checkpoints: Iterable[tuple[int, str]]) -> None:
        ordered = sorted(heads, key=lambda s: s.head.tree_size)
        self._heads: Iterator[SignedTreeHead] = iter(ordered)
        self._next = next(self._heads, None)
        self._points = sorted(set(checkpoints))
        self._point = 0
        self._key = public_key
        self.good_size = 0
        self.good_hash = GENESIS_HASH
        self.spans: list[tuple[int, int]] = []  # [bad seq, acknowledgement seq)
        self.superseded: list[int] = []
        self.cosigned: set[int] = set()

    def _covers_acknowledged(self, size: int) -> bool:
        return any(bad <= size < ack for bad, ack in self.spans)

    def check_at(self, size: int, root: Callable[[], bytes], entry_hash: str) -> str | None:
        """Check every head of exactly this size (or below, which cannot match any)."""
        while self._next is not None and self._next.head.tree_size <= size:
            if self._next.head.tree_size < size:
                return f"tree head with impossible size {self._next.head.tree_size}"
            problem = _head_problem(self._next, root(), self._key)
            if problem is not None and "root differs" in problem and (
                    self._covers_acknowledged(size)):
                self.superseded.append(size)
            elif problem is not None:
                return problem
            else:
                self.good_size, self.good_hash = size, entry_hash
            self._next = next(self._heads, None)
        return self._check_points(size, root)

    def _check_points(self, size: int, root: Callable[[], bytes]) -> str | None:
        points = self._points
        while self._point < len(points) and points[self._point][0] <= size:
            point_size, point_root = points[self._point]
            self._point += 1
            if point_size < size:
                continue  # a size no entry sequence reaches is reported by `beyond`
            if point_root == root().hex():
                self.cosigned.add(size)
            elif not self._covers_acknowledged(size):
                return f"witness cosigned size {size} with a root the entries do not give"
        return None

    def beyond(self) -> int | None:
        """Return the size of a head (or cosigned checkpoint) the log never reached, if any."""
        if self._next is not None:
            return self._next.head.tree_size
        return self._points[self._point][0] if self._point < len(self._points) else None


def verify_log(
    entries: Iterable[ChainedEntry],
    tree_heads: Iterable[SignedTreeHead],
    public_key: Ed25519PublicKey,
    *,
    acknowledgements: Mapping[int, Sequence[Acknowledgement]] | None = None,
    checkpoints: Iterable[tuple[int, str]] = (),
) -> VerifyResult:
    """Verify chain, Merkle roots, signatures and cosigned checkpoints; name the first bad
    event. `acknowledgements` (by the seq they acknowledge) let the check past those rows;
    `checkpoints` are (size, root hex) pairs that witnesses validly cosigned."""
    acks = {seq: list(found) for seq, found in (acknowledgements or {}).items()}
    chain, tree = ChainVerifier(), MerkleFrontier()
    heads = _HeadCursor(tree_heads, public_key, checkpoints)
    breaks: list[Break] = []
    first_unsigned: UUID | None = None
    first_unsigned_seq = 0

    def result(ok: bool, events: int, head: str, first_bad: UUID | None,
               reason: str | None) -> VerifyResult:
        if breaks:
            first_bad = breaks[0].id
            reason = reason or breaks[0].reason
        return VerifyResult(ok and not breaks, events, head, first_bad, reason, heads.good_size,
                            tuple(breaks), tuple(heads.superseded), frozenset(heads.cosigned))

    problem = heads.check_at(0, tree.root, GENESIS_HASH)
    if problem is not None:
        return result(False, 0, GENESIS_HASH, None, problem)
    for entry in entries:
        reason = chain.check(entry)
        if reason is not None:
            ack = covering(acks, entry)
            breaks.append(Break(entry.seq, entry.id, reason, ack))
            if ack is None:
                return result(False, chain.events, chain.head, entry.id, reason)
            for _ in range(chain.cross(entry)):
                tree.append(leaf_hash(MISSING_LEAF))
            heads.spans.append((entry.seq, ack.ack_seq))
        if first_unsigned_seq <= heads.good_size < entry.seq:
            first_unsigned, first_unsigned_seq = entry.id, entry.seq
        tree.append(leaf_hash(bytes.fromhex(entry.hash)))
        problem = heads.check_at(chain.events, tree.root, chain.head)
        if problem is not None:
            good = heads.good_size
            return result(False, good, heads.good_hash, first_unsigned, problem)
    missing = heads.beyond()
    if missing is not None:
        reason = f"signed head covers {missing} events but the log holds {chain.events}"
        return result(False, chain.events, chain.head, None, reason)
    return result(True, chain.events, chain.head, None, None)
