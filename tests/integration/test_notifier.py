"""The notifier against the real database, a real SMTP server and a real webhook receiver."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update

from schemas.envelope import wrap
from schemas.incidents import IncidentWithdrawn
from schemas.matching import ChildUnmatched
from services.common.app import create_app
from services.common.context import AppContext
from services.common.db import service_engine
from services.common.models import outbox
from services.common.pseudonym import child_key, child_key_v1
from services.common.security import Principal
from services.notifier.api import router
from services.notifier.channels import HttpxWebhookPoster, SmtpMailer
from services.notifier.content import opened_children
from services.notifier.context import NotifierContext
from services.notifier.dispatch import Dispatcher, redeem_sign_in_link
from services.notifier.handlers import (
    NotifierDeps,
    on_child_matched,
    on_child_unmatched,
    on_incident_withdrawn,
)
from services.notifier.models import notification_children, notifications, webhook_deliveries
from services.notifier.rekey import rekey_children
from tests.support.clock import Clock
from tests.support.db import executemanys, statements
from tests.support.notifier import (
    MATCHED_AT,
    PUSH_AT,
    School,
    add_school,
    child,
    facts,
    matched,
    rows_for,
)
from tests.support.tokens import bearer, person
from tests.support.webhooks import LOCAL

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(settings) -> AsyncIterator[Any]:
    """The notifier's own role: these tests act as the notifier."""
    engine = service_engine(settings, "notifier", pool_size=4)
    yield engine
    await engine.dispose()


@pytest.fixture
def clock() -> Clock:
    """Sunday evening, when the children are matched."""
    return Clock(MATCHED_AT)


@pytest.fixture
def deps(engine, clock, settings) -> NotifierDeps:
    return NotifierDeps(engine=engine, clock=clock,
                        child_key_secret=settings.child_key_secret.get_secret_value())


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def dispatcher(engine, clock, smtp_port: int, http: httpx.AsyncClient) -> Dispatcher:
    return Dispatcher(engine=engine, clock=clock, portal_base_url="https://portal.test",
                      mailer=SmtpMailer(host="127.0.0.1", port=smtp_port, sender="db@test"),
                      webhooks=HttpxWebhookPoster(http, egress=LOCAL), max_attempts=3, backoff_s=1)


async def test_children_of_one_incident_and_school_share_one_notification(engine, deps) -> None:
    school = await add_school(engine)
    incident_id = uuid.uuid4()
    first = matched(incident_id, school, "Zara")
    for envelope in (first, first, matched(incident_id, school, "Tomi", 1)):
        await on_child_matched(envelope, deps=deps)
    [row] = await rows_for(engine, incident_id)
    assert (row.school_urn, row.state, row.push_at) == (school.urn, "scheduled", PUSH_AT)
    assert row.deputy_at == PUSH_AT.replace(hour=9, minute=45)  # 60 min after 08:45
    assert row.la_at == PUSH_AT.replace(hour=10, minute=45)
    async with engine.connect() as conn:
        kids = (await conn.execute(select(notification_children.c.child_key).where(
            notification_children.c.notification_id == row.id))).all()
    assert len(kids) == 2


async def test_children_stored_under_v1_keys_are_re_keyed_once(engine, deps) -> None:
    school = await add_school(engine)
    incident_id = uuid.uuid4()
    for index, given in enumerate(("Анна", "Zoë")):
        await on_child_matched(matched(incident_id, school, given, index), deps=deps)
    [row] = await rows_for(engine, incident_id)
    c = notification_children.c
    secret = deps.child_key_secret
    async with engine.begin() as conn:  # as written before the upgrade: v1 keys
        for kid in opened_children(conn, (r._mapping for r in await conn.execute(
                select(c.notification_id, c.child_id, c.child).where(
                    c.notification_id == row.id)))):
            v1 = child_key_v1(secret, given_name=kid["child"]["given_name"],
                              family_name=kid["child"]["family_name"],
                              date_of_birth=date.fromisoformat(kid["child"]["date_of_birth"]))
            await conn.execute(update(notification_children).where(
                c.notification_id == row.id, c.child_id == kid["child_id"]).values(child_key=v1))
    assert await rekey_children(engine, secret, batch=1) >= 2  # batches until none are left
    async with engine.connect() as conn:
        keys = set((await conn.execute(select(c.child_key).where(
            c.notification_id == row.id))).scalars())
    born = date(2015, 1, 9)
    assert keys == {child_key(secret, given_name=given, family_name="Okafor", date_of_birth=born)
                    for given in ("Анна", "Zoe")}
    assert await rekey_children(engine, secret) == 0  # current keys are left alone


async def test_after_a_secret_rotation_stored_children_move_to_the_new_key(
    engine, deps, settings,
) -> None:
    school = await add_school(engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, school, "Zara"), deps=deps)  # a v2 key
    [row] = await rows_for(engine, incident_id)
    rotated = settings.child_keys().rotate()
    assert await rekey_children(engine, rotated) >= 1
    async with engine.connect() as conn:
        key = (await conn.execute(select(notification_children.c.child_key).where(
            notification_children.c.notification_id == row.id))).scalar_one()
    named = {"given_name": "Zara", "family_name": "Okafor", "date_of_birth": date(2015, 1, 9)}
    assert key == child_key(rotated, **named) and key.startswith("v3:k1:") and len(key) == 64
    assert key != child_key(settings.child_keys(), **named)
    assert await rekey_children(engine, rotated) == 0


async def test_unmatched_and_non_participating_go_to_the_la(engine, deps) -> None:
    school = await add_school(engine, participates=False)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, school, "Zara"), deps=deps)
    await on_child_unmatched(wrap(ChildUnmatched(
        child_id=uuid.uuid4(), child_index=1, incident=facts(incident_id), child=child("Ola"),
        la_code=school.la, reason="not_on_roll", decided_by="engine", decided_at=MATCHED_AT,
    )), deps=deps)
    [row] = await rows_for(engine, incident_id)
    assert (row.school_urn, row.la_code, row.recipient_key) == (None, school.la, f"la:{school.la}")
    assert row.deputy_at is None


async def test_one_content_free_email_per_school_even_with_two_dispatchers(
    engine, deps, clock, smtp, http
) -> None:
    inbox, port = smtp
    school = await add_school(engine)
    for n in range(3):
        await on_child_matched(matched(uuid.uuid4(), school, f"Zara{n}"), deps=deps)
    clock.now = PUSH_AT - timedelta(seconds=1)
    first, second = dispatcher(engine, clock, port, http), dispatcher(engine, clock, port, http)
    await first.run_once()
    assert inbox.to(school.dsl) == []
    clock.now = PUSH_AT
    await asyncio.gather(first.run_once(), second.run_once())
    await asyncio.gather(first.run_once(), second.run_once())
    [mail] = inbox.to(school.dsl)
    assert "3 new Operation Encompass notifications" in mail
    assert "Zara" not in mail and "Okafor" not in mail and "Secret" not in mail
    token = mail.split("token=")[1].split()[0]
    async with engine.begin() as conn:
        # only for the person it was sent to, and once
        assert await redeem_sign_in_link(conn, token, now=PUSH_AT, email=school.deputy) == (
            "not_yours")
        assert await redeem_sign_in_link(conn, token, now=PUSH_AT, email=school.dsl) == (
            "redeemed")
        assert await redeem_sign_in_link(conn, token, now=PUSH_AT, email=school.dsl) == (
            "expired")
        states = (await conn.execute(select(notifications.c.state).where(
            notifications.c.school_urn == school.urn))).scalars().all()
    assert states == ["sent"] * 3


async def test_a_pass_moves_its_notifications_in_as_many_updates_however_many(
    engine, deps, clock, smtp, http
) -> None:
    """The morning's pass records every notification it sent in one execution (an UPDATE
    over the rows as JSON, not an executemany), so a pass over ten schools sends as many
    UPDATEs of notifications as a pass over one; each row still ends as its own chain says
    (sent, with the e-mail that told its school)."""
    _, port = smtp

    async def a_pass(schools: int) -> list[str]:
        urns = []
        for _ in range(schools):
            school = await add_school(engine)
            urns.append(school.urn)
            await on_child_matched(matched(uuid.uuid4(), school, "Zara"), deps=deps)
        clock.now = PUSH_AT
        with statements(engine) as sent, executemanys(engine) as per_row:
            await dispatcher(engine, clock, port, http).run_once()
        # was the pass's UPDATE, run as one execution a row
        assert not [s for s in per_row if s.startswith("UPDATE notifier.notifications")]
        async with engine.connect() as conn:
            rows = (await conn.execute(select(notifications.c.state, notifications.c.email_id)
                                       .where(notifications.c.school_urn.in_(urns)))).all()
        assert len(rows) == schools and {r.state for r in rows} == {"sent"}
        assert len({r.email_id for r in rows}) == schools  # one e-mail per school
        return [s for s in sent if s.startswith("UPDATE notifier.notifications")]

    assert len(await a_pass(10)) == len(await a_pass(1)) == 1


async def test_unacknowledged_escalates_to_deputy_then_la(engine, deps, clock, smtp, http) -> None:
    inbox, port = smtp
    school = await add_school(engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, school, "Zara"), deps=deps)
    sender = dispatcher(engine, clock, port, http)
    for at in (PUSH_AT, PUSH_AT.replace(hour=9, minute=44)):
        clock.now = at
        await sender.run_once()
    assert inbox.to(school.deputy) == []
    clock.now = PUSH_AT.replace(hour=9, minute=45)
    await sender.run_once()
    assert "have not been acknowledged" in inbox.to(school.deputy)[0]
    assert inbox.to(school.la_contact) == []
    clock.now = PUSH_AT.replace(hour=10, minute=45)
    await sender.run_once()
    await sender.run_once()
    assert len(inbox.to(school.la_contact)) == 1 and len(inbox.to(school.deputy)) == 1
    [row] = await rows_for(engine, incident_id)
    assert (row.state, row.escalations_sent) == ("escalated", 2)
    assert await audited(engine, row.id, b"notification.escalated") == 2


async def test_withdrawal_cancels_before_sending_and_retracts_after(
    engine, deps, clock, smtp, http
) -> None:
    inbox, port = smtp
    school = await add_school(engine)
    early, late = uuid.uuid4(), uuid.uuid4()
    for incident_id in (early, late):
        await on_child_matched(matched(incident_id, school, "Zara"), deps=deps)
    await on_incident_withdrawn(withdrawn(early), deps=deps)
    clock.now = PUSH_AT
    sender = dispatcher(engine, clock, port, http)
    await sender.run_once()
    assert "has 1 new Operation Encompass notification." in inbox.to(school.dsl)[0]
    await on_incident_withdrawn(withdrawn(late), deps=deps)
    await sender.run_once()
    assert [r.state for r in await rows_for(engine, early)] == ["cancelled"]
    assert [r.state for r in await rows_for(engine, late)] == ["retracted"]
    [retracted] = await rows_for(engine, late)
    assert await audited(engine, retracted.id, b"notification.retracted") == 1
    _, retraction = inbox.to(school.dsl)
    assert "withdrawn" in retraction and "Zara" not in retraction and "token=" not in retraction
    # a match that arrives after its withdrawal never becomes a notification
    await on_child_matched(matched(early, school, "Tomi", 1), deps=deps)
    assert [r.state for r in await rows_for(engine, early)] == ["cancelled"]


async def audited(engine, notification_id: uuid.UUID, action: bytes) -> int:
    """How many disclosure events about this notification with this action are staged."""
    async with engine.connect() as conn:
        values = (await conn.execute(select(outbox.c.value).where(
            outbox.c.topic.like("%disclosures.v1")))).scalars().all()
    return sum(1 for v in values if action in v and str(notification_id).encode() in v)


def withdrawn(incident_id: uuid.UUID):
    return wrap(IncidentWithdrawn(incident_id=incident_id, force_code="WMP",
                                  withdrawn_at=PUSH_AT, reason="error"))


async def test_webhooks_are_signed_retried_and_dead_lettered(
    engine, deps, clock, smtp, http, receiver
) -> None:
    _, port = smtp
    flaky = await add_school(engine, webhook_url=receiver.url)
    broken = await add_school(engine, webhook_url="http://127.0.0.1:9/nothing")
    receiver.fail_first = 1
    for school in (flaky, broken):
        await on_child_matched(matched(uuid.uuid4(), school, "Zara"), deps=deps)
    sender = dispatcher(engine, clock, port, http)
    for seconds in (0, 1, 3, 10):  # backoff 1 s, then 2 s; dead after 3 attempts
        clock.now = PUSH_AT + timedelta(seconds=seconds)
        await sender.run_once()
    assert receiver.refused == 1 and len(receiver.verified) == 1
    assert b"Zara" not in receiver.verified[0] and flaky.urn.encode() in receiver.verified[0]
    async with engine.connect() as conn:
        rows = {r.school_urn: r for r in (await conn.execute(select(webhook_deliveries).where(
            webhook_deliveries.c.school_urn.in_([flaky.urn, broken.urn])))).all()}
    assert (rows[flaky.urn].status, rows[flaky.urn].attempts) == ("delivered", 2)
    assert (rows[broken.urn].status, rows[broken.urn].attempts) == ("dead", 3)


def dsl_of(school: School) -> Principal:
    return person("dsl", schools=[school.urn])


@pytest.fixture
async def api(settings, engine, clock, deps) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings, engine=engine, clock=clock, deps=deps,
        registry=__import__("prometheus_client").CollectorRegistry()))
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_dsl_reads_own_notification_with_an_audited_disclosure_and_acknowledges(
    engine, deps, clock, api, settings, smtp, http
) -> None:
    school = await add_school(engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, school, "Zara"), deps=deps)
    [row] = await rows_for(engine, incident_id)
    headers = bearer(dsl_of(school))
    listed = (await api.get("/v1/notifications", headers=headers)).json()["items"]
    assert [(i["id"], i["children"], i["state"]) for i in listed] == [(str(row.id), 1, "scheduled")]
    early = (await api.get(f"/v1/notifications/{row.id}", headers=headers)).json()
    assert early["state"] == "scheduled"  # read before the push: the push still happens
    clock.now = PUSH_AT
    await dispatcher(engine, clock, smtp[1], http).run_once()
    details = (await api.get(f"/v1/notifications/{row.id}", headers=headers)).json()
    assert details["state"] == "viewed"
    assert details["children"] == [{"given_name": "Zara", "family_name": "Okafor",
                                    "date_of_birth": "2015-01-09", "present_at_incident": True}]
    assert "summary" not in details["incident"] and "occurred_at" in details["incident"]
    async with engine.connect() as conn:
        staged = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == settings.topic("notifier"),
            outbox.c.topic.like("%disclosures.v1")))).scalars().all()
    assert any(str(row.id).encode() in v and b"notification.view" in v for v in staged)
    ack = await api.post(f"/v1/notifications/{row.id}/acknowledge",
                         json={"action_taken": "Spoke to the child"}, headers=headers)
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"


async def test_acknowledged_before_the_push_sends_no_email(
    engine, deps, clock, api, settings, smtp, http
) -> None:
    school = await add_school(engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, school, "Zara"), deps=deps)
    [row] = await rows_for(engine, incident_id)
    headers = bearer(dsl_of(school))
    ack = await api.post(f"/v1/notifications/{row.id}/acknowledge",
                         json={"action_taken": "pastoral support"}, headers=headers)
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    clock.now = PUSH_AT
    await dispatcher(engine, clock, smtp[1], http).run_once()
    assert smtp[0].to(school.dsl) == []


async def test_child_reported_absent_is_told_to_the_la_as_an_audited_disclosure(
    engine, deps, api, settings
) -> None:
    school = await add_school(engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, school, "Zara"), deps=deps)
    [row] = await rows_for(engine, incident_id)
    ack = await api.post(f"/v1/notifications/{row.id}/acknowledge",
                         headers=bearer(dsl_of(school)),
                         json={"action_taken": "school nurse", "attended": False})
    assert ack.status_code == 200
    rows = {r.school_urn: r for r in await rows_for(engine, incident_id)}
    assert rows[school.urn].action_taken == "school nurse; attended this morning: no"
    la_row = rows[None]
    assert la_row.la_code == school.la and la_row.recipient_role == "safeguarding"
    assert la_row.push_at <= datetime.now(UTC)  # at once, not next morning
    async with engine.connect() as conn:
        reasons = (await conn.execute(select(notification_children.c.unmatched_reason).where(
            notification_children.c.notification_id == la_row.id))).scalars().all()
        staged = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == settings.topic("notifier"),
            outbox.c.topic.like("%disclosures.v1")))).scalars().all()
    assert reasons == ["absent_after_incident"]
    assert any(b"absence.report" in v and str(row.id).encode() in v for v in staged)


async def test_another_schools_notification_is_404_on_every_route(
    engine, deps, api, settings
) -> None:
    school_a, school_b = await add_school(engine), await add_school(engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, school_b, "Zara"), deps=deps)
    [row] = await rows_for(engine, incident_id)
    as_a = bearer(person("dsl", schools=[school_a.urn]))
    assert (await api.get("/v1/notifications", headers=as_a)).json()["items"] == []
    assert (await api.get(f"/v1/notifications/{row.id}", headers=as_a)).status_code == 404
    assert (await api.post(f"/v1/notifications/{row.id}/acknowledge", json={},
                           headers=as_a)).status_code == 404
    assert (await api.get(f"/v1/notifications/{uuid.uuid4()}", headers=as_a)).status_code == 404
    admin = bearer(person("admin", schools=[school_b.urn]))
    assert (await api.get(f"/v1/notifications/{row.id}", headers=admin)).status_code == 403
    async with engine.connect() as conn:
        staged = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == "notifier", outbox.c.topic.like("%disclosures.v1")))
                  ).scalars().all()
    assert not any(str(row.id).encode() in v for v in staged)  # nobody was shown anything


async def test_the_app_consumes_matches_and_withdrawals_and_publishes_disclosures(
    settings, engine, smtp
) -> None:
    from schemas import topics
    from services.common.kafka import ensure_topics, make_producer
    from services.common.settings import TopicLayout
    from services.notifier.main import build_app
    from services.notifier.settings import NotifierSettings
    from tests.support.api import running
    from tests.support.kafka import read_topic

    own = NotifierSettings(**settings.model_dump() | {"smtp_port": smtp[1]})
    school = await add_school(engine)
    kept, gone = uuid.uuid4(), uuid.uuid4()
    await ensure_topics(own.kafka(), [own.topic(topics.MATCHES), own.topic(topics.INCIDENTS)],
                        layout=TopicLayout(partitions=2))
    app = build_app(own)
    # the matches are from Sunday evening: on the real clock they are long overdue, and the
    # dispatcher's escalation e-mails (audited too) would race the view's disclosure
    app.state.ctx.clock = lambda: MATCHED_AT
    async with running(app) as client:
        producer = make_producer(own.kafka())
        await producer.start()
        try:
            for incident_id in (kept, gone):
                await producer.send_and_wait(own.topic(topics.MATCHES), wrap_bytes(
                    matched(incident_id, school, "Zara")), key=str(incident_id).encode())
            withdrawal = withdrawn(gone)
            await producer.send_and_wait(own.topic(topics.INCIDENTS), wrap_bytes(withdrawal),
                                         key=str(gone).encode())
        finally:
            await producer.stop()
        # the two topics are not ordered against each other: the withdrawal may be handled
        # before the match (no notification is made) or after it (the notification is
        # cancelled); either way nothing is left to send
        for _ in range(300):  # a consumer group on a busy shared broker can be slow to join
            kept_states = [r.state for r in await rows_for(engine, kept)]
            gone_states = [r.state for r in await rows_for(engine, gone)]
            if kept_states == ["scheduled"] and gone_states in ([], ["cancelled"]) and \
                    await was_processed(engine, withdrawal.event_id):
                break
            await asyncio.sleep(0.2)
        assert kept_states == ["scheduled"]
        assert gone_states in ([], ["cancelled"])
        assert await was_processed(engine, withdrawal.event_id)
        [row] = await rows_for(engine, kept)
        resp = await client.get(f"/v1/notifications/{row.id}", headers=bearer(dsl_of(school)))
        assert resp.status_code == 200
        for _ in range(150):
            # the dispatcher serves the whole shared database: count only this notification's
            records = [r for r in await read_topic(own.kafka(), own.topic(topics.DISCLOSURES))
                       if str(row.id).encode() in r.value]
            if len(records) >= 2:
                break
            await asyncio.sleep(0.2)
    # the view, and the child's history shown beside it (each an audited disclosure)
    assert sorted(json.loads(r.value)["payload"]["action"] for r in records) == [
        "history.read", "notification.view"]
    assert not [r for r in records if b"Zara" in r.value]


async def was_processed(engine, event_id: uuid.UUID) -> bool:
    from services.common.models import processed_events

    async with engine.connect() as conn:
        found = await conn.execute(select(processed_events.c.event_id).where(
            processed_events.c.consumer == "notifier", processed_events.c.event_id == event_id))
    return found.first() is not None


def wrap_bytes(envelope: Any) -> bytes:
    data: bytes = envelope.to_bytes()
    return data


async def test_dead_deliveries_are_visible_to_admins_only(engine, settings) -> None:
    from services.notifier.admin_api import router as deliveries_router

    school = await add_school(engine)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(insert(webhook_deliveries).values(
            school_urn=school.urn, body=b"{}", status="dead", attempts=5, next_attempt_at=now,
            created_at=now, last_error="ConnectError"))
    app = create_app(title="notifier", service="notifier", ctx=AppContext(
        settings=settings, engine=engine,
        registry=__import__("prometheus_client").CollectorRegistry()))
    app.include_router(deliveries_router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        as_dsl = await client.get("/v1/deliveries/dead", headers=bearer(dsl_of(school)))
        as_admin = await client.get("/v1/deliveries/dead",
                                    headers=bearer(person("admin", schools=[school.urn])))
    assert as_dsl.status_code == 403
    dead = [h for h in as_admin.json()["webhooks"] if h["school_urn"] == school.urn]
    assert [(h["attempts"], h["last_error"]) for h in dead] == [(5, "ConnectError")]


async def test_a_school_with_more_due_than_a_batch_still_gets_one_email(
    engine, deps, clock, smtp, http
) -> None:
    inbox, port = smtp
    school = await add_school(engine)
    for n in range(5):
        await on_child_matched(matched(uuid.uuid4(), school, f"Zara{n}"), deps=deps)
    clock.now = PUSH_AT
    small = dispatcher(engine, clock, port, http)
    small.batch_size = 2  # fewer than the school's five due notifications
    await small.run_once()
    await small.run_once()
    [mail] = inbox.to(school.dsl)
    assert "5 new Operation Encompass notifications" in mail
