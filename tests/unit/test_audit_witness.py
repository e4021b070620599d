"""Witness cosignatures (C2SP tlog-cosignature/v1), the witness's consistency check, verify
past acknowledged breaks, and the evidence topics kept for ever."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.audit import TreeHeadSigned
from schemas.topics import AUDIT_COSIGNATURES, AUDIT_HEADS, DISCLOSURES
from services.audit.breaks import ACK_ACTION, MISSING_LEAF, Acknowledgement, ack_purpose
from services.audit.chain import AuditEntry, EntryDraft, entry_fields, hash_entry, seal_entry
from services.audit.cosign import (
    Checkpoint,
    Cosigner,
    cosign,
    cosigner_key_id,
    log_origin,
    parse_cosignature,
    parse_vkey,
    signed_message,
    verify_cosignature,
)
from services.audit.merkle import MerkleFrontier, MerkleLog, leaf_hash
from services.audit.tree_head import (
    SignedTreeHead,
    TreeHead,
    key_id,
    public_key_raw,
    sign_tree_head,
)
from services.audit.verify import verify_log
from services.audit.witness import Witness, read_state
from services.cli import _parser, main
from services.common.kafka_access import AUDIT, WITNESS, Operation, Resource
from services.common.settings import TopicLayout

T0 = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
ORIGIN = log_origin(LOG_KEY.public_key())


def chain(n: int, tag: str = "a") -> list[AuditEntry]:
    out: list[AuditEntry] = []
    for i in range(1, n + 1):
        draft = EntryDraft(UUID(int=i), T0 + timedelta(seconds=i), f"{tag}-{i}", "dsl", "viewed",
                           "portal", "103456", "ab" * 32, None, "safeguarding")
        out.append(seal_entry(draft, previous=out[-1] if out else None))
    return out


def tree_of(entries: list[AuditEntry]) -> MerkleLog:
    return MerkleLog.from_leaves(leaf_hash(bytes.fromhex(e.hash)) for e in entries)


def signed(tree: MerkleLog, size: int, key: Ed25519PrivateKey = LOG_KEY) -> TreeHeadSigned:
    head = TreeHead(size, tree.root(size).hex(), T0 + timedelta(hours=size))
    return TreeHeadSigned(tree_size=size, root_hash=head.root_hash, signed_at=head.timestamp,
                          key_id=key_id(key.public_key()),
                          signature=sign_tree_head(head, key).hex())


class TreeProofs:
    """What the audit API would serve for one log: RFC 9162 proofs from its tree."""

    def __init__(self, tree: MerkleLog) -> None:
        self.tree = tree

    async def consistency(self, first: int, second: int) -> list[bytes]:
        return self.tree.consistency_proof(first, second)


def witness_for(tree: MerkleLog, tmp_path) -> Witness:
    return Witness(name="witness.example/w1", private_key=WITNESS_KEY,
                   log_public_key=LOG_KEY.public_key(), state_file=tmp_path / "state.json",
                   proofs=TreeProofs(tree), clock=lambda: 1_700_000_000)


# --- the C2SP formats --------------------------------------------------------------------


def test_cosignature_is_a_c2sp_note_signature_over_the_checkpoint() -> None:
    checkpoint = Checkpoint(ORIGIN, 20852163, "0a" * 32)
    root = base64.b64encode(bytes.fromhex("0a" * 32)).decode()
    assert checkpoint.body() == f"{ORIGIN}\n20852163\n{root}\n".encode()
    assert signed_message(checkpoint, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + checkpoint.body())
    line = cosign(checkpoint, name="witness.example/w1", private_key=WITNESS_KEY,
                  timestamp=1679315147)
    dash, name, blob = line.split(" ")
    raw = base64.b64decode(blob)
    public = WITNESS_KEY.public_key()
    expected_id = hashlib.sha256(b"witness.example/w1\n\x04" + public_key_raw(public)).digest()
    assert (dash, name) == ("\u2014", "witness.example/w1")
    assert raw[:4] == expected_id[:4] == cosigner_key_id(name, public)
    assert struct.unpack(">Q", raw[4:12]) == (1679315147,)
    public.verify(raw[12:], signed_message(checkpoint, 1679315147))
    cosigner = Cosigner(name, public)
    assert verify_cosignature(checkpoint, line, cosigner)
    assert parse_cosignature(line).timestamp == 1679315147
    for other in (replace(checkpoint, tree_size=20852164), replace(checkpoint, root_hash="0b" * 32),
                  replace(checkpoint, origin="another/log")):
        assert not verify_cosignature(other, line, cosigner)
    assert not verify_cosignature(checkpoint, line, Cosigner("other-name", public))
    assert not verify_cosignature(checkpoint, line,
                                  Cosigner(name, LOG_KEY.public_key()))


def test_verifier_key_round_trips_and_a_wrong_key_id_is_refused() -> None:
    cosigner = Cosigner("witness.example/w1", WITNESS_KEY.public_key())
    vkey = cosigner.vkey()
    assert vkey.startswith(f"witness.example/w1+{cosigner.key_id.hex()}+")
    assert parse_vkey(vkey).key_id == cosigner.key_id
    name, kid, key = vkey.split("+", 2)
    for bad in (f"{name}+00000000+{key}", f"{name}+{kid}", f"{name}+{kid}+AAAA", "x"):
        with pytest.raises(ValueError):
            parse_vkey(bad)


# --- the witness ---------------------------------------------------------------------------


async def test_the_witness_cosigns_heads_that_extend_the_last_one(tmp_path) -> None:
    tree = tree_of(chain(12))
    witness = witness_for(tree, tmp_path)
    first = await witness.observe(signed(tree, 5))
    assert first is not None and first.tree_size == 5 and first.origin == ORIGIN
    later = await witness.observe(signed(tree, 12))
    assert later is not None
    assert verify_cosignature(Checkpoint(ORIGIN, 12, tree.root(12).hex()), later.cosignature,
                              witness.cosigner)
    assert await witness.observe(signed(tree, 12)) is None  # seen: nothing new to say
    assert await witness.observe(signed(tree, 7)) is None  # older than the state
    state = read_state(tmp_path / "state.json")
    assert state is not None and (state.tree_size, state.root_hash) == (12, tree.root().hex())
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600
    assert witness.refused == []


async def test_the_witness_refuses_a_forked_log(tmp_path) -> None:
    honest, forked = tree_of(chain(12)), tree_of(chain(12, tag="rewritten"))
    witness = witness_for(honest, tmp_path)
    assert await witness.observe(signed(honest, 6)) is not None
    # the same key signs a head of another history: its own proofs cannot bridge to ours
    witness.proofs = TreeProofs(forked)
    assert await witness.observe(signed(forked, 9)) is None
    assert await witness.observe(signed(forked, 6)) is None  # same size, another root
    assert len(witness.refused) == 2
    assert "not consistent with the head of size 6" in witness.refused[0]
    assert "fork" in witness.refused[1]
    state = read_state(tmp_path / "state.json")
    assert state is not None and state.tree_size == 6  # nothing of the fork was taken in
    # a head signed with another key, or with a bad signature, is never cosigned either
    witness.proofs = TreeProofs(honest)
    assert await witness.observe(signed(honest, 9, key=WITNESS_KEY)) is None
    bad = signed(honest, 9).model_copy(update={"signature": "00" * 64})
    assert await witness.observe(bad) is None
    assert "signature does not verify" in witness.refused[-1]
    assert await witness.observe(signed(honest, 9)) is not None


# --- verification past an acknowledged break -------------------------------------------


def sign_all(entries: list[AuditEntry], sizes: list[int]) -> list[SignedTreeHead]:
    tree, out = MerkleFrontier(), []
    for entry in entries:
        tree.append(leaf_hash(bytes.fromhex(entry.hash) if entry.hash != "" else MISSING_LEAF))
        if tree.size in sizes:
            head = TreeHead(tree.size, tree.root().hex(), T0 + timedelta(hours=tree.size))
            out.append(SignedTreeHead(head, sign_tree_head(head, LOG_KEY)))
    return out


def ack_for(bad: AuditEntry, at_seq: int) -> Acknowledgement:
    return Acknowledgement(bad.seq, bad.hash, "forged row, reported to the DPO", uuid4(), at_seq,
                           T0, "operator:ops")


def test_an_acknowledged_break_is_crossed_but_still_named() -> None:
    entries = chain(10)
    forged = replace(entries[3], purpose="forged")  # stored hash no longer matches
    entries[3] = forged
    heads = sign_all(entries, [2, 10])
    unacknowledged = verify_log(entries, heads, LOG_KEY.public_key())
    assert (unacknowledged.ok, unacknowledged.first_bad, unacknowledged.signed_events) == (
        False, forged.id, 2)
    result = verify_log(entries, heads, LOG_KEY.public_key(),
                        acknowledgements={4: [ack_for(forged, 8)]})
    assert (result.ok, result.first_bad, result.signed_events, result.events) == (
        False, forged.id, 10, 10)
    assert [(b.seq, b.acknowledgement is not None) for b in result.breaks] == [(4, True)]
    # an acknowledgement of another state of the row does not cover it
    other = replace(ack_for(forged, 8), entry_hash="00" * 32)
    assert verify_log(entries, heads, LOG_KEY.public_key(),
                      acknowledgements={4: [other]}).signed_events == 2


def test_a_head_over_the_rows_old_contents_is_superseded_not_fatal() -> None:
    entries = chain(10)
    old_heads = sign_all(entries, [5])  # signed before the row was edited
    edited = replace(entries[3], actor="someone-else")
    entries[3] = replace(edited, hash=hash_entry(entry_fields(edited), edited.prev_hash))
    later = sign_all(entries, [10])  # signed over the log as it stands, after the ack (seq 8)
    result = verify_log(entries, old_heads + later, LOG_KEY.public_key(),
                        acknowledgements={5: [ack_for(entries[4], 8)]})
    assert result.superseded_heads == (5,) and result.signed_events == 10
    assert result.first_bad == entries[4].id and not result.ok
    assert "prev_hash does not link" in result.breaks[0].reason


def test_a_missing_row_acknowledged_counts_as_an_all_zero_leaf() -> None:
    entries = chain(8)
    gap = [*entries[:4], *entries[5:]]  # seq 5 deleted
    stand_in = [*entries[:4], replace(entries[4], hash=""), *entries[5:]]
    heads = sign_all(stand_in, [8])
    result = verify_log(gap, heads, LOG_KEY.public_key(),
                        acknowledgements={6: [ack_for(entries[5], 8)]})
    assert result.signed_events == 8 and result.first_bad == entries[5].id
    assert "seq 5 missing" in result.breaks[0].reason


def test_cosigned_checkpoints_are_checked_against_the_entries() -> None:
    entries = chain(6)
    tree = tree_of(entries)
    heads = sign_all(entries, [3, 6])
    good = verify_log(entries, heads, LOG_KEY.public_key(),
                      checkpoints=[(3, tree.root(3).hex()), (6, tree.root(6).hex())])
    assert good.ok and good.cosigned_sizes == {3, 6}
    split = verify_log(entries, heads, LOG_KEY.public_key(), checkpoints=[(3, "00" * 32)])
    assert not split.ok and split.reason is not None and "witness cosigned size 3" in split.reason


def test_the_acknowledgement_purpose_names_the_row_and_refuses_bad_reasons() -> None:
    text = ack_purpose(4, "ab" * 32, "forged row, reported to the DPO")
    assert text.startswith("break at seq 4 acknowledged, row stored with hash " + "ab" * 32)
    assert ACK_ACTION == "audit.break.acknowledged"
    for bad in ("short", "line one\nline two", "x" * 501):
        with pytest.raises(ValueError):
            ack_purpose(4, "ab" * 32, bad)


# --- kept for ever, and who may touch it --------------------------------------------------


def test_the_heads_and_cosignatures_topics_are_kept_for_ever() -> None:
    layout = TopicLayout()
    for base in (AUDIT_HEADS, AUDIT_COSIGNATURES):
        configs = layout.configs("t-" + base)
        assert (configs["retention.ms"], configs["retention.bytes"]) == ("-1", "-1")
    assert layout.configs(DISCLOSURES)["retention.ms"] != "-1"


def test_the_witness_reads_heads_and_writes_only_cosignatures() -> None:
    grants = {(g.resource, g.name, g.operation) for g in WITNESS.grants("p-")}
    assert grants == {(Resource.TOPIC, "p-" + AUDIT_HEADS, Operation.READ),
                      (Resource.TOPIC, "p-" + AUDIT_COSIGNATURES, Operation.WRITE)}
    audit = {(g.name, g.operation) for g in AUDIT.grants("p-")}
    assert ("p-" + AUDIT_COSIGNATURES, Operation.READ) in audit
    assert ("p-" + AUDIT_COSIGNATURES, Operation.WRITE) not in audit


def test_the_cli_has_the_acknowledgement_and_the_witness(capsys) -> None:
    args = _parser().parse_args(["audit", "acknowledge-break", "--seq", "4",
                                 "--reason", "forged row, reported to the DPO"])
    assert (args.seq, args.reason, args.actor) == (4, "forged row, reported to the DPO", None)
    assert _parser().parse_args(["audit", "witness"]).run is not None
    assert main(["audit", "witness-keygen", "--name", "witness.example/w9"]) == 0
    vkey = json.loads(capsys.readouterr().out)["vkey"]
    assert parse_vkey(vkey).name == "witness.example/w9"
