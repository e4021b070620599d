"""Benchmark the pure audit core: append rate, full-log verification and proof latency.

Everything runs in-process on one core with no database: canonical JSON, chain hashing,
Merkle updates and Ed25519 signing of a tree head every --sign-every events. Targets:
append >= 5,000 events/s, verify 1M events <= 30 s, inclusion proof at 1M leaves p99 <= 5 ms.
A naive baseline (recompute the whole tree per append / per proof) runs in the same process
so the ratios are comparable.

    .venv/bin/python bench/audit_core.py --events 1000000
"""

from __future__ import annotations

import argparse
import platform
import random
import resource
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit import merkle
from services.audit.chain import AuditEntry, EntryDraft, seal_entry
from services.audit.merkle import MerkleLog, leaf_hash, verify_inclusion
from services.audit.tree_head import SignedTreeHead, TreeHead, sign_tree_head
from services.audit.verify import verify_log

T0 = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
ACTIONS = ("notification.sent", "notification.viewed", "notification.acknowledged")


def make_draft(i: int) -> EntryDraft:
    """Build a plausible disclosure record for event number i."""
    return EntryDraft(
        id=UUID(int=(i * 0x9E3779B97F4A7C15) & ((1 << 128) - 1)),
        at=T0 + timedelta(microseconds=i * 1_237),
        actor=f"dsl-{i % 997}@school-{i % 4999}.example",
        actor_role="dsl",
        action=ACTIONS[i % 3],
        channel="portal" if i % 2 else "email",
        school_urn=str(100_000 + i % 4999),
        child_key=f"ck_{(i * 2_654_435_761) % 2**32:08x}",
        notification_id=UUID(int=i + 1),
        purpose="Operation Encompass safeguarding notification",
    )


def build_log(
    n: int, sign_every: int, key: Ed25519PrivateKey
) -> tuple[list[AuditEntry], list[SignedTreeHead], MerkleLog, float]:
    """Append n events as the service would; return entries, heads, tree and seconds."""
    entries: list[AuditEntry] = []
    heads: list[SignedTreeHead] = []
    log = MerkleLog()
    previous: AuditEntry | None = None
    start = time.perf_counter()
    for i in range(n):
        previous = seal_entry(make_draft(i), previous=previous)
        entries.append(previous)
        size = log.append(leaf_hash(bytes.fromhex(previous.hash))) + 1
        if size % sign_every == 0:
            head = TreeHead(size, log.root().hex(), previous.at)
            heads.append(SignedTreeHead(head, sign_tree_head(head, key)))
    return entries, heads, log, time.perf_counter() - start


def time_proofs(log: MerkleLog, samples: int, seed: int) -> list[float]:
    """Time inclusion proofs for random leaves, checking each one; returns milliseconds."""
    rng, size, root = random.Random(seed), log.size, log.root()
    millis = []
    for _ in range(samples):
        index = rng.randrange(size)
        start = time.perf_counter_ns()
        proof = log.inclusion_proof(index)
        millis.append((time.perf_counter_ns() - start) / 1e6)
        assert verify_inclusion(log.leaf(index), index, size, proof, root)
    return millis


def baseline_append(n: int) -> tuple[float, float]:
    """Seconds to keep a root current over n appends: naive full rebuild vs incremental."""
    leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]
    start = time.perf_counter()
    for i in range(1, n + 1):
        merkle.root(leaves[:i])
    naive = time.perf_counter() - start
    start = time.perf_counter()
    log = MerkleLog()
    for leaf in leaves:
        log.append(leaf)
        log.root()
    return naive, time.perf_counter() - start


def baseline_proof(log: MerkleLog, samples: int, seed: int) -> float:
    """Milliseconds for an inclusion proof rebuilt from all leaves (no stored levels)."""
    rng, leaves = random.Random(seed), [log.leaf(i) for i in range(log.size)]
    start = time.perf_counter()
    for _ in range(samples):
        merkle.inclusion_proof(rng.randrange(len(leaves)), leaves)
    return (time.perf_counter() - start) / samples * 1e3


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def verdict(ok: bool) -> str:
    """Spell a target check."""
    return "PASS" if ok else "FAIL"


def report_append(
    events: int, sign_every: int, key: Ed25519PrivateKey
) -> tuple[list[AuditEntry], list[SignedTreeHead], MerkleLog]:
    """Build the log, printing the append rate."""
    entries, heads, log, seconds = build_log(events, sign_every, key)
    rate = events / seconds
    print(
        f"append   {events:,} events (draft + canonical JSON + chain + Merkle"
        f" + {len(heads):,} signed heads): {seconds:.2f} s = {rate:,.0f} events/s"
        f"  [target >= 5,000: {verdict(rate >= 5_000)}]"
    )
    return entries, heads, log


def report_verify(
    entries: list[AuditEntry], heads: list[SignedTreeHead], key: Ed25519PrivateKey
) -> None:
    """Verify the whole log, printing the time taken."""
    start = time.perf_counter()
    result = verify_log(entries, heads, key.public_key())
    seconds = time.perf_counter() - start
    assert result.ok and result.events == len(entries), result
    print(
        f"verify   {result.events:,} events, {len(heads):,} heads (chain + tree + signatures):"
        f" {seconds:.2f} s = {result.events / seconds:,.0f} events/s"
        f"  [target <= 30 s: {verdict(seconds <= 30)}]"
    )


def report_proofs(log: MerkleLog, samples: int, seed: int) -> float:
    """Time inclusion proofs, printing percentiles; returns the p50 in milliseconds."""
    millis = time_proofs(log, samples, seed)
    p50, p99 = percentile(millis, 50), percentile(millis, 99)
    mean, worst = statistics.fmean(millis), max(millis)
    print(
        f"proof    inclusion at {log.size:,} leaves, {len(millis):,} random events:"
        f" p50 {p50:.4f} ms, p99 {p99:.4f} ms, max {worst:.4f} ms, mean {mean:.4f} ms"
        f"  [target p99 <= 5 ms: {verdict(p99 <= 5)}]"
    )
    return p50


def report_baselines(log: MerkleLog, proof_p50: float, events: int, seed: int) -> None:
    """Print the naive-versus-incremental ratios for proofs and for keeping the root."""
    naive_ms = baseline_proof(log, 2, seed)
    print(
        f"baseline proof rebuilt from {log.size:,} leaves: {naive_ms:,.0f} ms/proof"
        f" = {naive_ms / proof_p50:,.0f}x the incremental p50"
    )
    naive, incremental = baseline_append(events)
    print(
        f"baseline root kept current over {events:,} appends: naive rebuild"
        f" {naive:.3f} s vs incremental {incremental:.4f} s = {naive / incremental:,.0f}x"
    )


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="log size to verify")
    parser.add_argument("--sign-every", type=int, default=1_000)
    parser.add_argument("--proofs", type=int, default=10_000, help="inclusion proofs timed")
    parser.add_argument("--baseline-events", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20250106)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    print(f"python {platform.python_version()} on {platform.machine()}, one core, no DB")
    entries, heads, log = report_append(args.events, args.sign_every, key)
    report_verify(entries, heads, key)
    p50 = report_proofs(log, args.proofs, args.seed)
    report_baselines(log, p50, args.baseline_events, args.seed)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"memory   peak RSS {peak_mib:,.0f} MiB (entries + Merkle levels in memory)")


if __name__ == "__main__":
    main()
