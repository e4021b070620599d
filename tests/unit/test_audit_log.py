"""The audit service's pure parts: cursors, retention dates, settings, heads file, tree cache."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.disclosures import DisclosureRecorded
from services.audit.chain import EntryDraft, seal_entry
from services.audit.cli import retention_cutoff
from services.audit.heads import StoredHead, append_head_line, read_heads_file
from services.audit.log import TreeCache, draft_of
from services.audit.merkle import MerkleLog, leaf_hash
from services.audit.queries import decode_cursor, encode_cursor
from services.audit.settings import AuditSettings
from services.audit.tree_head import (
    SignedTreeHead,
    TreeHead,
    generate_keypair,
    key_id,
    load_private_key,
    sign_tree_head,
)

SECRETS = {"jwt_secret": "j" * 40, "child_key_secret": "c" * 40,
           "kafka_username": "audit", "kafka_password": "p" * 40}
AT = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)


def entries(n: int):
    previous, out = None, []
    for i in range(n):
        draft = EntryDraft(uuid.uuid4(), AT, f"actor-{i}", "dsl", "viewed", "portal", "103456",
                           "ab" * 32, None, "safeguarding")
        previous = seal_entry(draft, previous=previous)
        out.append(previous)
    return out


def test_cursor_round_trips_and_refuses_anything_else() -> None:
    assert decode_cursor(encode_cursor(41, 99)) == (41, 99)
    for bad in ("", "nope", encode_cursor(1, 2)[:-2] + "!!", "djI6MTox"):
        with pytest.raises(ValueError):
            decode_cursor(bad)


def test_retention_cutoff_is_calendar_years_back() -> None:
    assert retention_cutoff(AT, 25) == datetime(2001, 11, 23, 7, 30, tzinfo=UTC)
    leap = datetime(2028, 2, 29, tzinfo=UTC)
    assert retention_cutoff(leap, 25) == datetime(2003, 2, 28, tzinfo=UTC)


@pytest.fixture
def no_audit_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's .daybreak/env may hold a signing key: these tests need none set."""
    for name in ("DAYBREAK_AUDIT_SIGNING_KEY", "DAYBREAK_AUDIT_PUBLIC_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_audit_keys")
def test_production_refuses_a_missing_signing_key_but_allows_verify_only() -> None:
    with pytest.raises(ValidationError, match="DAYBREAK_AUDIT_SIGNING_KEY"):
        AuditSettings(env="production", **SECRETS)
    pair = generate_keypair()
    verifier = AuditSettings(env="production", audit_public_key=pair.public_key, **SECRETS)
    assert key_id(verifier.public_key()) == key_id(load_private_key(pair.private_key).public_key())
    with pytest.raises(ValueError, match="required to sign"):
        verifier.private_key()
    with pytest.raises(ValidationError):
        AuditSettings(env="production", audit_signing_key="not-a-key", **SECRETS)


@pytest.mark.usefixtures("no_audit_keys")
def test_development_signs_with_an_ephemeral_key_and_tests_keep_heads_apart() -> None:
    one, two = AuditSettings(env="development"), AuditSettings(env="test", **SECRETS)
    assert key_id(one.public_key()) != key_id(two.public_key())
    assert ".daybreak" not in str(two.audit_heads_file)


def test_heads_file_round_trips_and_skips_a_torn_line(tmp_path) -> None:
    private = load_private_key(generate_keypair().private_key)
    head = TreeHead(3, "ab" * 32, AT)
    stored = StoredHead(SignedTreeHead(head, sign_tree_head(head, private)), "k1")
    path = tmp_path / "heads" / "tree-heads.jsonl"
    append_head_line(path, stored)
    with path.open("a") as out:
        out.write('{"tree_size": 4, "root_')
    assert read_heads_file(path) == [stored]
    assert read_heads_file(tmp_path / "absent.jsonl") == []


def test_tree_cache_takes_entries_in_order_only() -> None:
    log = entries(3)
    cache = TreeCache()
    cache.note(log[1])  # out of order: left for refresh
    assert cache.size == 0
    cache.note(log[0])
    cache.note(log[1])
    cache.note(log[2])
    expected = MerkleLog.from_leaves(leaf_hash(bytes.fromhex(e.hash)) for e in log)
    assert cache.tree.root() == expected.root() and cache.broken is None


def test_disclosure_maps_onto_the_chain_and_its_context() -> None:
    event = DisclosureRecorded(
        disclosure_id=uuid.uuid4(), at=AT, actor="u1", actor_role="la_officer",
        action="review.viewed", channel="portal", purpose="review", la_code="E08",
        child_key="cd" * 32, review_id=uuid.uuid4())
    draft, context = draft_of(event)
    assert draft.id == event.disclosure_id and draft.school_urn is None
    assert context.la_code == "E08" and context.review_id == event.review_id
