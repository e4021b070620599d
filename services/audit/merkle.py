"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and an incremental log.

Definitions are those of RFC 9162 §2.1: leaves are hashed as SHA-256(0x00 ‖ data), interior
nodes as SHA-256(0x01 ‖ left ‖ right), the empty tree's head is SHA-256(""), and a tree of n
leaves splits at k, the largest power of two smaller than n. Proof elements are ordered from
the leaf upwards, exactly as the RFC's PATH and PROOF recursions produce them.

A full aligned subtree of 2**h leaves starting at leaf i*2**h is node i of level h; every
range the RFC recursions ask for is either such a subtree or a right edge made of them, so
`MerkleLog` answers roots and proofs for any size up to its own in O(log n).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256
SubtreeHash = Callable[[int, int], bytes]


def leaf_hash(leaf_bytes: bytes) -> bytes:
    """Hash one leaf's data as RFC 9162 does: SHA-256(0x00 ‖ data)."""
    return _sha256(b"\x00" + leaf_bytes).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child hashes into their parent: SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Return the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleFrontier:
    """Only the full subtrees on the right edge: enough for the root, O(log n) memory."""

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def append(self, leaf: bytes) -> None:
        """Append a leaf hash, merging equal-height subtrees as a binary counter does."""
        stack, height, acc = self._stack, 0, leaf
        while stack and stack[-1][0] == height:
            acc = node_hash(stack.pop()[1], acc)
            height += 1
        stack.append((height, acc))
        self.size += 1

    def root(self) -> bytes:
        """Return the tree head of every leaf appended so far."""
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            acc = node_hash(left, acc)
        return acc


class MerkleLog:
    """An append-only tree keeping every full subtree's hash, level by level."""

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]

    @classmethod
    def from_leaves(cls, leaf_hashes: Iterable[bytes]) -> MerkleLog:
        """Build a log holding the given leaf hashes in order."""
        log = cls()
        for leaf in leaf_hashes:
            log.append(leaf)
        return log

    @property
    def size(self) -> int:
        """Return the number of leaves appended so far."""
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        """Return the leaf hash stored at `index`."""
        return self._levels[0][index]

    def append(self, leaf: bytes) -> int:
        """Append a leaf hash and return its index; O(1) amortised, O(log n) worst case."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        levels = self._levels
        levels[0].append(leaf)
        height = 0
        while len(levels[height]) % 2 == 0:
            below = levels[height]
            if height + 1 == len(levels):
                levels.append([])
            levels[height + 1].append(node_hash(below[-2], below[-1]))
            height += 1
        return len(levels[0]) - 1

    def root(self, size: int | None = None) -> bytes:
        """Return the tree head for the first `size` leaves (default: all of them)."""
        n = self.size if size is None else size
        self._check_size(n)
        return self._subtree(0, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return RFC 9162 PATH(index, D[size]) for the first `size` leaves."""
        n = self.size if size is None else size
        self._check_size(n)
        return _inclusion_path(index, n, self._subtree)

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """Return RFC 9162 PROOF(old_size, D[size]) for the first `size` leaves."""
        n = self.size if size is None else size
        self._check_size(n)
        return _consistency_path(old_size, n, self._subtree)

    def _check_size(self, n: int) -> None:
        if not 0 <= n <= self.size:
            raise ValueError(f"tree size {n} outside 0..{self.size}")

    def _subtree(self, start: int, end: int) -> bytes:
        """Return MTH(D[start:end]) for a range the RFC recursions produce."""
        if start == end:
            return EMPTY_ROOT
        pieces: list[bytes] = []
        while start < end:
            # Whole subtree if the width is a power of two, else its RFC left split.
            height = (end - start).bit_length() - 1
            assert start % (1 << height) == 0, "range not aligned to a full subtree"
            pieces.append(self._levels[height][start >> height])
            start += 1 << height
        acc = pieces.pop()
        while pieces:
            acc = node_hash(pieces.pop(), acc)
        return acc


def _inclusion_path(index: int, n: int, subtree: SubtreeHash) -> list[bytes]:
    """Walk RFC 9162 §2.1.3.1 PATH top-down, returning siblings leaf-first."""
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} outside tree of size {n}")
    start, end, path = 0, n, []
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start += k
    path.reverse()
    return path


def _consistency_path(m: int, n: int, subtree: SubtreeHash) -> list[bytes]:
    """Walk RFC 9162 §2.1.4.1 SUBPROOF top-down, returning nodes leaf-first."""
    if not 0 <= m <= n:
        raise ValueError(f"old size {m} outside 0..{n}")
    if m in (0, n):
        return []
    start, end, whole, proof = 0, n, True, []
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:
        proof.append(subtree(start, end))
    proof.reverse()
    return proof


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the RFC 9162 Merkle tree head of the given leaf hashes."""
    return MerkleLog.from_leaves(leaf_hashes).root()


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the inclusion proof of leaf `index` in the tree of all given leaves."""
    return MerkleLog.from_leaves(leaf_hashes).inclusion_proof(index)


def consistency_proof(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the proof that the first m leaves' tree is a prefix of the whole tree."""
    return MerkleLog.from_leaves(leaf_hashes).consistency_proof(m)


def _all_hashes(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """Check an inclusion proof with the RFC 9162 §2.1.3.2 algorithm."""
    if not (0 <= index < tree_size and _all_hashes(leaf, root_hash, *proof)):
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> bool:
    """Check a consistency proof with the RFC 9162 §2.1.4.2 algorithm."""
    if not (0 <= m <= n and _all_hashes(root_m, root_n, *proof)):
        return False
    if m == 0:
        return not proof and root_m == EMPTY_ROOT
    if m == n:
        return not proof and root_m == root_n
    if not proof:
        return False
    path = [root_m, *proof] if m & (m - 1) == 0 else list(proof)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root_m and sr == root_n and sn == 0
