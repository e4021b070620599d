"""Audit hash chain, signed tree heads and whole-log verification against tampering."""

import base64
import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    EntryDraft,
    canonical_json,
    entry_fields,
    hash_entry,
    seal_entry,
    verify_chain,
)
from services.audit.merkle import MerkleFrontier, leaf_hash
from services.audit.tree_head import (
    SignedTreeHead,
    TreeHead,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    public_key_raw,
    sign_tree_head,
    tree_head_bytes,
    verify_tree_head,
)
from services.audit.verify import verify_log

T0 = datetime(2025, 1, 6, 7, 30, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def draft(i: int, purpose: str = "safeguarding") -> EntryDraft:
    return EntryDraft(
        id=UUID(int=i),
        at=T0 + timedelta(seconds=i, microseconds=7),
        actor=f"dsl-{i % 3}@school.example",
        actor_role="dsl",
        action="notification.viewed",
        channel="portal",
        school_urn="100000",
        child_key=f"ck_{i:04x}",
        notification_id=UUID(int=1000 + i),
        purpose=purpose,
    )


def build_chain(n: int, drafts: dict[int, EntryDraft] | None = None) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for i in range(1, n + 1):
        d = (drafts or {}).get(i, draft(i))
        entries.append(seal_entry(d, previous=entries[-1] if entries else None))
    return entries


def sign_heads(entries: list[AuditEntry], every: int) -> list[SignedTreeHead]:
    tree, heads = MerkleFrontier(), []
    for entry in entries:
        tree.append(leaf_hash(bytes.fromhex(entry.hash)))
        if tree.size % every == 0:
            head = TreeHead(tree.size, tree.root().hex(), T0 + timedelta(hours=tree.size))
            heads.append(SignedTreeHead(head, sign_tree_head(head, KEY)))
    return heads


# --- Canonical JSON and the entry hash ---------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8_with_fixed_time_and_uuid_forms() -> None:
    bst = timezone(timedelta(hours=1))
    value = {
        "b": 'Zoë\u001f"\\',
        "a": datetime(2025, 6, 1, 8, 0, 0, 5, tzinfo=bst),
        "c": UUID("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
        "d": None,
        "e": 7,
    }
    expected = (
        '{"a":"2025-06-01T07:00:00.000005Z","b":"Zoë\\u001f\\"\\\\",'
        '"c":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","d":null,"e":7}'
    )
    assert canonical_json(value) == expected.encode("utf-8")


@pytest.mark.parametrize(
    "bad",
    [datetime(2025, 1, 1), 1.5, 2**53, "\ud800", b"bytes"],
)
def test_canonical_json_refuses_values_without_one_spelling(bad: object) -> None:
    with pytest.raises((TypeError, ValueError, UnicodeEncodeError)):
        canonical_json({"x": bad})


def test_entry_hash_is_sha256_of_the_canonical_fields_with_prev_hash() -> None:
    entry = seal_entry(draft(1), previous=None, hash_version=1)  # as sealed before 0017
    text = (
        '{"action":"notification.viewed","actor":"dsl-1@school.example","actor_role":"dsl",'
        '"at":"2025-01-06T07:30:01.000007Z","channel":"portal","child_key":"ck_0001",'
        '"id":"00000000-0000-0000-0000-000000000001",'
        '"notification_id":"00000000-0000-0000-0000-0000000003e9",'
        f'"prev_hash":"{GENESIS_HASH}","purpose":"safeguarding","school_urn":"100000"}}'
    )
    assert entry.prev_hash == "0" * 64
    assert entry.seq == 1
    assert entry.hash == hashlib.sha256(text.encode()).hexdigest()
    assert hash_entry(entry_fields(entry), GENESIS_HASH) == entry.hash
    with pytest.raises(ValueError):
        hash_entry(entry_fields(entry), "1" * 64)


def test_second_entry_links_to_the_first() -> None:
    first, second = build_chain(2)
    assert second.seq == 2
    assert second.prev_hash == first.hash
    assert second.hash == hash_entry(entry_fields(second), first.hash)


# --- Chain verification -----------------------------------------------------------------


def test_intact_chain_verifies() -> None:
    entries = build_chain(10)
    result = verify_chain(entries)
    assert (result.ok, result.events, result.head, result.first_bad) == (
        True, 10, entries[-1].hash, None,
    )  # fmt: skip
    assert verify_chain([]).head == GENESIS_HASH


def test_edited_row_is_named() -> None:
    entries = build_chain(10)
    entries[4] = replace(entries[4], purpose="curiosity")
    result = verify_chain(entries)
    assert not result.ok
    assert result.first_bad == entries[4].id
    assert (result.events, result.head) == (4, entries[3].hash)


def test_edited_row_with_its_own_hash_recomputed_breaks_the_next_link() -> None:
    entries = build_chain(10)
    edited = replace(entries[4], child_key="ck_ffff")
    entries[4] = replace(edited, hash=hash_entry(entry_fields(edited), edited.prev_hash))
    assert verify_chain(entries).first_bad == entries[5].id


def test_deleted_row_names_the_one_after_the_gap() -> None:
    entries = build_chain(10)
    del entries[6]
    result = verify_chain(entries)
    assert not result.ok
    assert result.first_bad == entries[6].id
    assert result.reason is not None and "seq 7 missing" in result.reason


def test_deleted_row_with_renumbered_seq_breaks_the_link() -> None:
    entries = build_chain(10)
    del entries[6]
    entries[6:] = [replace(e, seq=e.seq - 1) for e in entries[6:]]
    assert verify_chain(entries).first_bad == entries[6].id


def test_reordered_rows_are_caught() -> None:
    entries = build_chain(10)
    entries[3], entries[4] = entries[4], entries[3]
    assert verify_chain(entries).first_bad == entries[3].id
    swapped_seq = build_chain(10)
    a, b = swapped_seq[3], swapped_seq[4]
    swapped_seq[3], swapped_seq[4] = replace(b, seq=a.seq), replace(a, seq=b.seq)
    assert verify_chain(swapped_seq).first_bad == swapped_seq[3].id


# --- Signed tree heads ------------------------------------------------------------------


def test_tree_head_bytes_are_domain_tagged_canonical_json() -> None:
    head = TreeHead(3, "ab" * 32, T0)
    assert tree_head_bytes(head) == (
        b"daybreak/audit/tree-head/v1\n"
        b'{"root_hash":"' + b"ab" * 32 + b'","timestamp":"2025-01-06T07:30:00.000000Z",'
        b'"tree_size":3}'
    )


def test_signature_over_a_tampered_head_fails() -> None:
    head = TreeHead(1000, "cd" * 32, T0)
    signature = sign_tree_head(head, KEY)
    public = KEY.public_key()
    assert verify_tree_head(head, signature, public)
    assert not verify_tree_head(replace(head, tree_size=999), signature, public)
    assert not verify_tree_head(replace(head, root_hash="ce" + "cd" * 31), signature, public)
    assert not verify_tree_head(replace(head, timestamp=T0 + timedelta(1)), signature, public)
    assert not verify_tree_head(head, signature, OTHER_KEY.public_key())
    assert not verify_tree_head(head, signature[:-1] + b"\x00", public)
    assert not verify_tree_head(replace(head, root_hash="CD" * 32), signature, public)


def test_rfc8032_test_1_key_loads_from_base64_and_signs_as_published() -> None:
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    private = load_private_key(base64.b64encode(seed).decode())
    assert public_key_raw(private.public_key()).hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert private.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
        "39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


@pytest.mark.parametrize("pem", [False, True])
def test_generated_keypair_round_trips(pem: bool) -> None:
    pair = generate_keypair(pem=pem)
    private, public = load_private_key(pair.private_key), load_public_key(pair.public_key)
    assert public_key_raw(private.public_key()) == public_key_raw(public)
    assert len(key_id(public)) == 16
    head = TreeHead(1, "00" * 32, T0)
    assert verify_tree_head(head, sign_tree_head(head, private), public)


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"short").decode()])
def test_bad_key_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        load_private_key(text)
    with pytest.raises(ValueError):
        load_public_key(text)


# --- Whole-log verification -------------------------------------------------------------


def test_intact_log_with_signed_heads_verifies() -> None:
    entries = build_chain(2500)
    result = verify_log(entries, sign_heads(entries, 1000), KEY.public_key())
    assert result.ok and result.first_bad is None
    assert (result.events, result.head, result.signed_events) == (2500, entries[-1].hash, 2000)


def test_chain_recomputed_without_the_key_fails_at_the_signed_head() -> None:
    entries = build_chain(2500)
    heads = sign_heads(entries, 1000)
    rewritten = build_chain(2500, {1500: draft(1500, purpose="routine")})
    assert verify_chain(rewritten).ok
    result = verify_log(rewritten, heads, KEY.public_key())
    assert not result.ok
    assert result.first_bad == rewritten[1000].id
    assert (result.events, result.head, result.signed_events) == (1000, entries[999].hash, 1000)
    assert result.reason is not None and "size 2000" in result.reason


def test_chain_fault_is_named_before_any_later_head() -> None:
    entries = build_chain(2500)
    heads = sign_heads(entries, 1000)
    entries[1234] = replace(entries[1234], actor="someone-else")
    result = verify_log(entries, heads, KEY.public_key())
    assert (result.ok, result.first_bad, result.signed_events) == (False, entries[1234].id, 1000)


def test_head_signed_with_another_key_fails() -> None:
    entries = build_chain(30)
    heads = sign_heads(entries, 10)
    forged = SignedTreeHead(heads[1].head, sign_tree_head(heads[1].head, OTHER_KEY))
    result = verify_log(entries, [heads[0], forged, heads[2]], KEY.public_key())
    assert (result.ok, result.first_bad, result.events) == (False, entries[10].id, 10)
    assert result.reason is not None and "signature" in result.reason


def test_rows_cut_from_the_end_are_caught_by_the_head() -> None:
    entries = build_chain(30)
    heads = sign_heads(entries, 10)
    result = verify_log(entries[:25], heads, KEY.public_key())
    assert (result.ok, result.first_bad, result.events) == (False, None, 25)
    assert result.reason is not None and "covers 30" in result.reason
    assert verify_chain(entries[:25]).ok


def test_empty_log_and_empty_head() -> None:
    empty = TreeHead(0, MerkleFrontier().root().hex(), T0)
    signed = SignedTreeHead(empty, sign_tree_head(empty, KEY))
    assert verify_log([], [signed], KEY.public_key()).ok
    wrong = TreeHead(0, "00" * 32, T0)
    assert not verify_log(
        [], [SignedTreeHead(wrong, sign_tree_head(wrong, KEY))], KEY.public_key()
    ).ok


# --- Hash versions: every column since version 2 ----------------------------------------

CONTEXT = {"la_code": "E08000025", "review_id": UUID(int=77), "incident_id": UUID(int=88)}


def test_a_version_2_hash_covers_every_column_but_seq_and_hash() -> None:
    recorded = T0 + timedelta(minutes=5)
    entry = seal_entry(replace(draft(1), **CONTEXT), previous=None, recorded_at=recorded)
    text = (
        '{"action":"notification.viewed","actor":"dsl-1@school.example","actor_role":"dsl",'
        '"at":"2025-01-06T07:30:01.000007Z","channel":"portal","child_key":"ck_0001",'
        '"hash_version":2,"id":"00000000-0000-0000-0000-000000000001",'
        '"incident_id":"00000000-0000-0000-0000-000000000058","la_code":"E08000025",'
        '"notification_id":"00000000-0000-0000-0000-0000000003e9",'
        f'"prev_hash":"{GENESIS_HASH}","purpose":"safeguarding",'
        '"recorded_at":"2025-01-06T07:35:00.000000Z",'
        '"review_id":"00000000-0000-0000-0000-00000000004d","school_urn":"100000"}'
    )
    assert entry.hash_version == 2
    assert entry.hash == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("column", ["la_code", "review_id", "incident_id", "recorded_at"])
def test_editing_a_context_column_of_a_version_2_row_is_named(column: str) -> None:
    drafts = {i: replace(draft(i), **CONTEXT) for i in range(1, 6)}
    entries = build_chain(5, drafts)
    changed = {"la_code": "E09000001", "review_id": UUID(int=5), "incident_id": UUID(int=6),
               "recorded_at": T0 + timedelta(days=1)}[column]
    entries[2] = replace(entries[2], **{column: changed})
    result = verify_chain(entries)
    assert (result.ok, result.first_bad) == (False, entries[2].id)
    assert result.reason is not None and "hash does not match" in result.reason


def test_version_1_rows_still_verify_and_a_version_2_row_cannot_pose_as_one() -> None:
    old: list[AuditEntry] = []
    for i in range(1, 4):
        old.append(seal_entry(draft(i), previous=old[-1] if old else None, hash_version=1))
    entries = [*old]
    for i in range(4, 7):
        entries.append(seal_entry(replace(draft(i), **CONTEXT), previous=entries[-1]))
    assert verify_chain(entries).ok  # v1 then v2: each checked by its own version
    # a v1 row's context columns are not in its hash (the trigger alone guards them)
    assert verify_chain([replace(old[0], la_code="X"), *entries[1:]]).ok
    # recomputing a v2 row as v1 to leave its context out is caught by the order of versions
    posed = replace(entries[4], hash_version=1, la_code="E09000001")
    posed = replace(posed, hash=hash_entry(entry_fields(posed), posed.prev_hash))
    result = verify_chain([*entries[:4], posed])
    assert result.first_bad == posed.id
    assert result.reason is not None and "hash version 1 after version 2" in result.reason
    unknown = replace(entries[3], hash_version=9)
    assert "unknown hash version" in (verify_chain([*old, unknown]).reason or "")
