"""RFC 9162 Merkle tree: published vectors, a naive reference, and tampered proofs."""

import hashlib

import pytest

from services.audit.merkle import (
    EMPTY_ROOT,
    MerkleFrontier,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# The Certificate Transparency reference leaves and their tree heads for sizes 0..8.
CT_DATA = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_LEAVES = [leaf_hash(d) for d in CT_DATA]


# --- A deliberately naive reference, transcribed from RFC 9162 §2.1 ---------------------


def ref_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    """MTH over leaf *data*, recursively, exactly as written in the RFC."""
    n = len(d)
    if n == 0:
        return ref_hash(b"")
    if n == 1:
        return ref_hash(b"\x00" + d[0])
    k = ref_k(n)
    return ref_hash(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


DATA = [f"event-{i}".encode() for i in range(64)]
LEAVES = [leaf_hash(d) for d in DATA]
ROOTS = [ref_mth(DATA[:n]) for n in range(65)]


# --- Known answers ----------------------------------------------------------------------


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert root([]).hex() == CT_ROOTS[0]
    assert MerkleLog().root() == EMPTY_ROOT
    assert MerkleFrontier().root() == EMPTY_ROOT


@pytest.mark.parametrize("n", range(9))
def test_roots_match_the_certificate_transparency_vectors(n: int) -> None:
    assert root(CT_LEAVES[:n]).hex() == CT_ROOTS[n]


def test_two_and_three_leaf_roots_spelled_out_by_hand() -> None:
    a, b, c = (hashlib.sha256(b"\x00" + x).digest() for x in (b"a", b"b", b"c"))
    ab = hashlib.sha256(b"\x01" + a + b).digest()
    assert root([leaf_hash(b"a"), leaf_hash(b"b")]) == ab
    abc = hashlib.sha256(b"\x01" + ab + c).digest()  # split at 2, not at the midpoint
    assert root([leaf_hash(x) for x in (b"a", b"b", b"c")]) == abc


def test_published_inclusion_and_consistency_proofs() -> None:
    assert [p.hex() for p in inclusion_proof(0, CT_LEAVES)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [p.hex() for p in inclusion_proof(5, CT_LEAVES)] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [p.hex() for p in consistency_proof(2, CT_LEAVES[:5])] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


# --- Against the reference, n = 1..64 ---------------------------------------------------


@pytest.mark.parametrize("n", range(1, 65))
def test_root_and_every_proof_agree_with_the_reference(n: int) -> None:
    leaves, tree_root = LEAVES[:n], ROOTS[n]
    assert root(leaves) == tree_root
    for m in range(n):
        proof = inclusion_proof(m, leaves)
        assert proof == ref_path(m, DATA[:n])
        assert verify_inclusion(leaves[m], m, n, proof, tree_root)
    for m in range(1, n + 1):
        proof = consistency_proof(m, leaves)
        assert proof == ref_proof(m, DATA[:n])
        assert verify_consistency(m, n, ROOTS[m], tree_root, proof)


def test_incremental_log_answers_for_every_past_size() -> None:
    log, frontier = MerkleLog(), MerkleFrontier()
    for i, leaf in enumerate(LEAVES):
        assert log.append(leaf) == i
        frontier.append(leaf)
        assert log.root() == frontier.root() == ROOTS[i + 1]
    for n in range(1, 65):
        assert log.root(n) == ROOTS[n]
        for m in range(n):
            assert log.inclusion_proof(m, n) == ref_path(m, DATA[:n])
        for m in range(n + 1):
            assert log.consistency_proof(m, n) == (ref_proof(m, DATA[:n]) if m else [])


def test_larger_tree_matches_the_reference_at_a_few_sizes() -> None:
    data = [i.to_bytes(4, "big") for i in range(1500)]
    log = MerkleLog.from_leaves(leaf_hash(d) for d in data)
    for n in (1023, 1024, 1025, 1500):
        assert log.root(n) == ref_mth(data[:n])
    assert log.inclusion_proof(777, 1500) == ref_path(777, data)
    assert log.consistency_proof(1000, 1500) == ref_proof(1000, data)


# --- Tampered proofs fail ---------------------------------------------------------------


def flip(proof: list[bytes], i: int) -> list[bytes]:
    bad = list(proof)
    bad[i] = bytes([bad[i][0] ^ 0x01]) + bad[i][1:]
    return bad


@pytest.mark.parametrize("n", [2, 3, 5, 7, 8, 13, 32, 33, 64])
def test_tampered_inclusion_proofs_fail(n: int) -> None:
    leaves, tree_root = LEAVES[:n], ROOTS[n]
    for m in range(n):
        proof = inclusion_proof(m, leaves)
        for i in range(len(proof)):
            assert not verify_inclusion(leaves[m], m, n, flip(proof, i), tree_root)
        assert not verify_inclusion(leaves[m], m, n, proof[:-1], tree_root)
        assert not verify_inclusion(leaves[m], m, n, [*proof, b"\xab" * 32], tree_root)
        assert not verify_inclusion(leaves[m], (m + 1) % n, n, proof, tree_root)
        # A proof alone does not fix the size where the shape is shared (leaf 0 of 3 vs
        # 4 leaves): the signed tree head binds tree_size. Sizes changing the shape fail.
        assert not verify_inclusion(leaves[m], m, 2 * n, proof, tree_root)
        assert not verify_inclusion(leaves[m], m, n, proof, ROOTS[n - 1])
        assert not verify_inclusion(leaves[(m + 1) % n], m, n, proof, tree_root)


@pytest.mark.parametrize("n", [2, 3, 5, 7, 8, 13, 32, 33, 64])
def test_tampered_consistency_proofs_fail(n: int) -> None:
    for m in range(1, n):
        proof = consistency_proof(m, LEAVES[:n])
        root_m, root_n = ROOTS[m], ROOTS[n]
        for i in range(len(proof)):
            assert not verify_consistency(m, n, root_m, root_n, flip(proof, i))
        assert not verify_consistency(m, n, root_m, root_n, proof[:-1])
        assert not verify_consistency(m, n, root_m, root_n, [*proof, b"\xcd" * 32])
        assert not verify_consistency(m, 2 * n, root_m, root_n, proof)
        assert not verify_consistency(m, n, ROOTS[m - 1], root_n, proof)
        assert not verify_consistency(m, n, root_m, ROOTS[n - 1], proof)
        if m + 1 < n:
            assert not verify_consistency(m + 1, n, root_m, root_n, proof)


def test_degenerate_and_malformed_inputs() -> None:
    r4, r8 = ROOTS[4], ROOTS[8]
    assert verify_consistency(4, 4, r4, r4, [])
    assert not verify_consistency(4, 4, r4, ROOTS[5], [])
    assert not verify_consistency(4, 4, r4, r4, [r4])
    assert verify_consistency(0, 8, EMPTY_ROOT, r8, [])
    assert not verify_consistency(0, 8, r4, r8, [])
    assert not verify_consistency(8, 4, r8, r4, [])
    assert not verify_consistency(3, 8, ROOTS[3], r8, [])
    proof = inclusion_proof(5, LEAVES[:8])
    assert not verify_inclusion(LEAVES[5], 8, 8, proof, r8)
    assert not verify_inclusion(LEAVES[5], -1, 8, proof, r8)
    assert not verify_inclusion(LEAVES[5][:31], 5, 8, proof, r8)
    assert not verify_inclusion(LEAVES[5], 5, 8, [proof[0][:31], *proof[1:]], r8)
    assert not verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)
    assert verify_inclusion(LEAVES[0], 0, 1, [], ROOTS[1])
    with pytest.raises(ValueError):
        inclusion_proof(8, LEAVES[:8])
    with pytest.raises(ValueError):
        consistency_proof(9, LEAVES[:8])
    with pytest.raises(ValueError):
        MerkleLog.from_leaves(LEAVES[:8]).root(9)
    with pytest.raises(ValueError):
        MerkleLog().append(b"short")
