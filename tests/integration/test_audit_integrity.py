"""The audit log can be neither appended to nor jammed: every column hashed, an operator's
acknowledged way past a bad row, and an independent witness that cosigns consistent heads.

The module gets its own database: the tests forge and rewrite rows (the last one leaves an
acknowledged break behind for good, as a real one would).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from schemas.topics import AUDIT_COSIGNATURES
from services.audit import cli
from services.audit.chain import EntryDraft, seal_entry
from services.audit.cosign import Cosigner, log_origin
from services.audit.log import Context, append_entries, last_entry
from services.audit.main import build_app
from services.audit.models import CHAIN_COLUMNS, audit_events
from services.audit.settings import AuditSettings
from services.audit.tree_head import generate_keypair, load_private_key, public_key_raw
from services.audit.witness import (
    ApiProofs,
    Witness,
    WitnessSettings,
    WitnessState,
    build_witness,
    follow_heads,
    read_state,
    write_state,
)
from services.common.db import service_engine
from services.common.security import Principal
from tests.support.api import running
from tests.support.audit import tamper
from tests.support.db import create_test_database, drop_test_database, service_urls
from tests.support.ids import next_urn
from tests.support.kafka import read_topic
from tests.support.tokens import bearer, trusting

pytestmark = pytest.mark.integration
AUDITOR = Principal(subject="auditor-9", kind="user", role="auditor",
                    scopes=frozenset({"audit:read"}))
AT = datetime(2026, 12, 3, 9, 15, tzinfo=UTC)
REASON = "row forged straight into the table; reported to the DPO (ticket 4411)"


@pytest.fixture(scope="module")
async def audit_db() -> AsyncIterator[dict[str, str]]:
    urls = await create_test_database()
    yield urls
    await drop_test_database(urls)


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    return {"log": generate_keypair().private_key, "witness": generate_keypair().private_key}


@pytest.fixture
def witness_vkey(keys) -> str:
    return Cosigner("witness.test/w1", load_private_key(keys["witness"]).public_key()).vkey()


@pytest.fixture
def settings(audit_db, kafka_bootstrap, topic_prefix, keys, witness_vkey, tmp_path_factory):
    return AuditSettings(
        env="test", **service_urls(audit_db), kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix, child_key_secret=secrets.token_hex(32), **trusting(),
        cookie_secure=False, db_pool_size=5, kafka_partitions=1,
        audit_signing_key=keys["log"], audit_witness_keys=[witness_vkey],
        audit_heads_file=tmp_path_factory.mktemp("heads") / "tree-heads.jsonl",
        audit_sign_every=1000, audit_sign_interval_s=300,
    )


@pytest.fixture
async def engine(settings):
    engine = service_engine(settings, "audit", pool_size=3)
    yield engine
    await engine.dispose()


async def seed(engine, n: int) -> list[EntryDraft]:
    drafts = [EntryDraft(
        id=uuid.uuid4(), at=AT, actor="officer-3", actor_role="la_officer",
        action="review.viewed", channel="portal", school_urn=next_urn(),
        child_key=secrets.token_hex(32), notification_id=None, purpose="review",
    ) for _ in range(n)]
    context = Context(la_code="E08000025", review_id=uuid.uuid4(), incident_id=uuid.uuid4())
    async with engine.begin() as conn:
        await append_entries(conn, [(d, context) for d in drafts])
    return drafts


async def signed_over(client: httpx.AsyncClient, entry_id: uuid.UUID) -> httpx.Response:
    """The inclusion proof of an entry: the app signs a head over it if none covers it."""
    return await client.get(f"/v1/audit/events/{entry_id}/proof", headers=bearer(AUDITOR))


async def verify_api(client: httpx.AsyncClient) -> dict:
    resp = await client.get("/v1/audit/verify", headers=bearer(AUDITOR))
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_rows_sealed_before_0017_still_verify_beside_new_ones(settings) -> None:
    fresh = await create_test_database()  # an empty log: version-1 rows can only come first
    try:
        config = settings.model_copy(update=service_urls(fresh))
        engine = service_engine(config, "audit", pool_size=2)
        try:
            previous, rows = None, []
            for i in range(3):  # sealed as the code before 0017 sealed them
                draft = EntryDraft(uuid.uuid4(), AT, f"dsl-{i}", "dsl", "notification.viewed",
                                   "portal", "103456", "ab" * 32, None, "safeguarding")
                previous = seal_entry(draft, previous=previous, hash_version=1)
                rows.append({c.name: getattr(previous, c.name) for c in CHAIN_COLUMNS}
                            | {"la_code": "E08", "recorded_at": AT})
            async with engine.begin() as conn:
                await conn.execute(insert(audit_events), rows)
            await seed(engine, 2)
            async with engine.connect() as conn:
                versions = (await conn.execute(select(audit_events.c.hash_version).order_by(
                    audit_events.c.seq))).scalars().all()
            assert versions == [1, 1, 1, 2, 2]
            report = await asyncio.to_thread(_verify_cli_json, config)
            assert report["ok"] and report["events"] == 5, report
            with pytest.raises(IntegrityError):  # no default: a writer says what it sealed
                async with engine.begin() as conn:
                    await conn.execute(insert(audit_events).values(
                        {k: v for k, v in rows[0].items() if k != "hash_version"}
                        | {"seq": 6, "id": uuid.uuid4()}))
        finally:
            await engine.dispose()
    finally:
        await drop_test_database(fresh)


def _verify_cli_json(config: AuditSettings) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.verify(config)
    return json.loads(out.getvalue())


@pytest.mark.parametrize(("column", "value"), [
    ("la_code", "E09000033"), ("review_id", uuid.uuid4()), ("incident_id", uuid.uuid4()),
    ("recorded_at", datetime(2020, 1, 1, tzinfo=UTC)),
])
async def test_editing_any_column_is_named_by_verify_and_the_cli(
    settings, engine, audit_db, column, value
) -> None:
    drafts = await seed(engine, 3)
    victim = drafts[1]
    async with engine.connect() as conn:
        original = (await conn.execute(select(audit_events.c[column]).where(
            audit_events.c.id == victim.id))).scalar_one()
    async with running(build_app(settings)) as client:
        assert (await signed_over(client, drafts[-1].id)).status_code == 200
        await tamper(audit_db, f"UPDATE audit.audit_events SET {column} = $2 WHERE id = $1",
                     victim.id, value)
        try:
            report = await verify_api(client)
            assert (report["ok"], report["first_bad"]) == (False, str(victim.id)), report
            assert "hash does not match" in report["reason"]
            assert report["signing_blocked"]
            assert await asyncio.to_thread(cli.verify, settings) == 1
        finally:
            await tamper(audit_db, f"UPDATE audit.audit_events SET {column} = $2 WHERE id = $1",
                         victim.id, original)
        assert (await verify_api(client))["ok"]


def witness_settings(settings: AuditSettings, keys, state_file) -> WitnessSettings:
    public = load_private_key(keys["log"]).public_key()
    return WitnessSettings(
        env="test", kafka_bootstrap=settings.kafka_bootstrap, topic_prefix=settings.topic_prefix,
        child_key_secret=secrets.token_hex(32), witness_signing_key=keys["witness"],
        witness_name="witness.test/w1", witness_state_file=state_file,
        witness_log_public_key=base64.b64encode(public_key_raw(public)).decode())


async def witness_until(config: WitnessSettings, client: httpx.AsyncClient,
                        done: Callable[[Witness], Awaitable[bool]]) -> Witness:
    """Run the witness (its proofs from the app under test) until `done` says so."""
    token = bearer(AUDITOR)["Authorization"].removeprefix("Bearer ")
    witness = build_witness(config, ApiProofs(client, lambda: token))
    stop = asyncio.Event()
    task = asyncio.create_task(follow_heads(config, witness, stop=stop, poll_ms=200))
    try:
        for _ in range(150):
            if task.done() or await done(witness):
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return witness


async def cosigned_sizes(settings: AuditSettings) -> set[int]:
    records = await read_topic(settings.kafka(), settings.topic(AUDIT_COSIGNATURES))
    return {json.loads(r.value)["payload"]["tree_size"] for r in records}


async def test_the_witness_cosigns_consistent_heads_and_refuses_a_fork(
    settings, engine, keys, tmp_path
) -> None:
    config = witness_settings(settings, keys, tmp_path / "witness" / "state.json")
    async with running(build_app(settings)) as client:
        first = await seed(engine, 2)
        head_a = (await signed_over(client, first[-1].id)).json()["tree_size"]
        later = await seed(engine, 3)
        head_b = (await signed_over(client, later[-1].id)).json()["tree_size"]

        async def both_cosigned(_: Witness) -> bool:
            return {head_a, head_b} <= await cosigned_sizes(settings)

        witness = await witness_until(config, client, both_cosigned)
        assert witness.refused == []
        assert {head_a, head_b} <= await cosigned_sizes(settings)
        report = await verify_api(client)
        assert report["ok"], report
        (seen,) = report["witnesses"]
        assert seen["name"] == "witness.test/w1" and seen["invalid_cosignatures"] == 0
        assert seen["largest_cosigned"] == head_b and report["latest_head_cosigned"]
        assert report["heads_cosigned"] >= 2

        # the witness last cosigned another history at size A (a fork): the log's own proof
        # from A cannot bridge to it, so nothing further is cosigned and the state stays
        origin = log_origin(load_private_key(keys["log"]).public_key())
        write_state(config.witness_state_file, WitnessState(origin, head_a, "ee" * 32))
        more = await seed(engine, 2)
        head_c = (await signed_over(client, more[-1].id)).json()["tree_size"]

        async def saw_head_c(w: Witness) -> bool:
            return any(f"size {head_c} refused" in r for r in w.refused)

        forked = await witness_until(config, client, saw_head_c)
        assert any("fork" in r for r in forked.refused), forked.refused
        assert any(f"size {head_c} refused: not consistent" in r for r in forked.refused)
        assert head_c not in await cosigned_sizes(settings)
        state = read_state(config.witness_state_file)
        assert state is not None and state.root_hash == "ee" * 32
        report = await verify_api(client)
        assert report["ok"] and not report["latest_head_cosigned"]


async def test_a_forged_row_jams_signing_until_an_operator_acknowledges_it(
    settings, engine
) -> None:
    await seed(engine, 2)
    async with running(build_app(settings)) as client:
        async with engine.connect() as conn:
            last = await last_entry(conn)
        assert last is not None
        assert (await signed_over(client, last.id)).status_code == 200
    # the audit role itself may INSERT: a row with a hash that matches nothing
    forged_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(insert(audit_events).values(
            seq=last.seq + 1, id=forged_id, at=AT, actor="nobody", actor_role="dsl",
            action="notification.viewed", purpose="jam", prev_hash=last.hash, hash="f" * 64,
            hash_version=2, recorded_at=AT))
    after = await seed(engine, 2)  # honest entries chain on after it
    async with running(build_app(settings)) as client:
        jammed = await signed_over(client, after[-1].id)
        assert jammed.status_code == 409, jammed.text  # no head covers anything new
        report = await verify_api(client)
        assert report["first_bad"] == str(forged_id) and report["signing_blocked"]
        assert report["signed_events"] == last.seq

        with pytest.raises(ValueError, match="no unacknowledged break at seq"):
            await cli.record_acknowledgement(settings, seq=last.seq, reason=REASON,
                                             actor="operator:test", now=AT)
        with pytest.raises(ValueError, match="reason"):
            await cli.record_acknowledgement(settings, seq=last.seq + 1, reason="oops",
                                             actor="operator:test", now=AT)
        done = await cli.record_acknowledgement(settings, seq=last.seq + 1, reason=REASON,
                                                actor="operator:test", now=AT)
        assert done["signed_tree_size"] == done["entry_seq"] == last.seq + 4

        unjammed = await signed_over(client, after[-1].id)
        assert unjammed.status_code == 200, unjammed.text
        report = await verify_api(client)
        assert (report["ok"], report["first_bad"]) == (False, str(forged_id))  # still named
        assert not report["signing_blocked"]
        assert report["signed_events"] >= done["entry_seq"]
        (found,) = report["breaks"]
        assert found["seq"] == last.seq + 1 and "hash does not match" in found["reason"]
        assert found["acknowledgement"]["seq"] == done["entry_seq"]
        assert found["acknowledgement"]["reason"] == REASON
        assert found["acknowledgement"]["actor"] == "operator:test"
        events = (await client.get("/v1/audit/events", params={"actor": "operator:test"},
                                   headers=bearer(AUDITOR))).json()["events"]
        assert [e["action"] for e in events] == ["audit.break.acknowledged"]
        assert await asyncio.to_thread(cli.verify, settings) == 1
        # new entries are signed again: the next head grows past the acknowledgement
        newer = await seed(engine, 1)
        assert (await signed_over(client, newer[0].id)).status_code == 200
