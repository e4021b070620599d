"""Every sign-in, failed sign-in and throttled refusal is a security event: a row admins can
page through and one log line, neither holding the e-mail or a secret; old ones are purged."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select

from services.common.db import service_engine, standalone_uow
from services.common.models import outbox
from services.common.settings import Settings
from services.identity.models import auth_failures, security_events, sessions
from services.identity.security_events import Attempt, record_event, run_retention
from tests.support.api import basic, new_police_client, new_user
from tests.support.clock import Clock
from tests.support.ids import next_address, next_email, next_urn
from tests.support.signin import client_from, events_for, identity_app, signin_settings
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"
AGENT = "Mozilla/5.0 (" + "x" * 300 + ")"
FAR_OFF = datetime(2031, 1, 6, 9, 0, tzinfo=UTC)  # after every other test's events


async def test_each_sign_in_and_refusal_is_recorded_without_the_email_or_a_secret(
    settings: Settings, caplog: pytest.LogCaptureFixture,
) -> None:
    email = next_email("dsl")
    _, secret = await new_user(settings, email=email, password=PASSWORD, role="dsl",
                               school_urns=[next_urn()], la_codes=[])
    client_id, client_secret = await new_police_client(settings, "WMP")
    address, totp = next_address(), pyotp.TOTP(secret)
    caplog.set_level(logging.INFO, logger="daybreak.identity.security")
    async with identity_app(signin_settings(settings)) as app, \
            client_from(app, address) as http:
        http.headers["user-agent"] = AGENT
        ok = await http.post("/v1/sessions", json={
            "email": email, "password": PASSWORD, "totp": totp.now()})
        assert ok.status_code == 200
        for i in range(6):  # five failures, then refused unchecked
            await http.post("/v1/sessions", json={
                "email": email, "password": f"wrong {i}", "totp": "000000"})
        form = {"grant_type": "client_credentials"}
        assert (await http.post("/v1/token", data=form,
                                headers=basic(client_id, "nope"))).status_code == 401
        assert (await http.post("/v1/token", data=form,
                                headers=basic(client_id, client_secret))).status_code == 200
    people = await events_for(settings, f"user:{email}")
    clients = await events_for(settings, f"client:{client_id}")
    assert [e.outcome for e in people] == ["success"] + ["failure"] * 5 + ["throttled"]
    assert [e.outcome for e in clients] == ["failure", "success"]
    assert {e.kind for e in people} == {"user_session"}
    assert {e.kind for e in clients} == {"client_token"}
    for event in people + clients:
        assert event.client_address == address and event.user_agent == AGENT[:200]
        assert len(event.subject_hash) == 64 and email not in str(event)
    assert people[0].subject_hash == hashlib.sha256(f"user:{email}".encode()).hexdigest()
    lines = [r for r in caplog.records if hasattr(r, "security_event")]
    assert len(lines) == 9 and {r.outcome for r in lines} == {  # type: ignore[attr-defined]
        "success", "failure", "throttled"}
    for record in lines:
        text = f"{record.getMessage()} {vars(record)}"
        assert email not in text and PASSWORD not in text and client_secret not in text


async def test_admins_page_through_the_events_from_a_given_time(settings: Settings) -> None:
    clock, address = Clock(FAR_OFF), next_address()
    async with identity_app(signin_settings(settings), clock=clock) as app, \
            client_from(app, address) as http:
        emails = [next_email("paged") for _ in range(5)]
        for email in emails:
            await http.post("/v1/sessions", json={
                "email": email, "password": "guess", "totp": "000000"})
            clock.now += timedelta(seconds=1)
        admin = bearer(person("admin"))
        since = {"since": FAR_OFF.isoformat(), "limit": "2"}
        pages, cursor = [], None
        while True:
            answer = await http.get("/v1/security-events", headers=admin,
                                    params=since | ({"cursor": cursor} if cursor else {}))
            assert answer.status_code == 200, answer.text
            assert not any(email in answer.text for email in emails)
            pages.append(answer.json()["events"])
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break
        naive = await http.get("/v1/security-events", headers=admin,
                               params={"since": "2031-01-06T09:00:00"})
        later = await http.get("/v1/security-events", headers=admin, params={
            "since": (FAR_OFF + timedelta(seconds=3)).isoformat()})
        refused = await http.get("/v1/security-events", headers=bearer(person("auditor")))
    assert [len(p) for p in pages] == [2, 2, 1]
    events = [e for page in pages for e in page]
    assert [e["at"] for e in events] == [
        (FAR_OFF + timedelta(seconds=s)).isoformat() for s in range(5)]
    assert {(e["kind"], e["outcome"], e["client_address"]) for e in events} == {
        ("user_session", "failure", address)}
    assert [e["subject_hash"] for e in events] == [
        hashlib.sha256(f"user:{email}".encode()).hexdigest() for email in emails]
    assert naive.status_code == 422 and refused.status_code in (401, 403)
    assert len(later.json()["events"]) == 2


async def test_retention_purges_old_events_and_spent_failures(settings: Settings) -> None:
    long_ago = datetime(2020, 3, 2, 8, 0, tzinfo=UTC)  # before every other test's rows
    subject = f"purge-{next_address()}"
    async with standalone_uow(settings, "identity") as uow:
        for days in (0, 100):
            await record_event(uow.conn, Attempt(next_address(), "", long_ago + timedelta(
                days=days)), kind="user_session", outcome="failure", subject_hash=subject)
        await uow.conn.execute(auth_failures.insert().values(
            subject_hash=subject, failed_at=long_ago, client_address="10.0.0.1"))
        ended, live = uuid.uuid4(), uuid.uuid4()  # a session ended long ago, one lasting
        for sid, expires in ((ended, long_ago), (live, long_ago + timedelta(days=365))):
            await uow.conn.execute(sessions.insert().values(
                sid=sid, subject=subject[:64], kind="user", created_at=long_ago,
                expires_at=expires))
        sent, owed = uuid.uuid4(), uuid.uuid4()  # a revocation published, one not yet
        for event_id, published in ((sent, long_ago), (owed, None)):
            await uow.conn.execute(outbox.insert().values(
                source="identity", topic="t.identity-revocations.v1", key=subject[:64],
                event_id=event_id, value=b"{}", created_at=long_ago, published_at=published))
        await uow.commit()
    engine = service_engine(settings, "identity")
    try:
        purged = await run_retention(engine, now=long_ago + timedelta(days=200), days=180,
                                     window=timedelta(minutes=15))
        async with engine.connect() as conn:
            kept = (await conn.execute(select(security_events.c.at).where(
                security_events.c.subject_hash == subject))).scalars().all()
            failures = (await conn.execute(select(auth_failures.c.id).where(
                auth_failures.c.subject_hash == subject))).all()
            sids = (await conn.execute(select(sessions.c.sid).where(
                sessions.c.sid.in_([ended, live])))).scalars().all()
            rows = (await conn.execute(select(outbox.c.event_id).where(
                outbox.c.event_id.in_([sent, owed])))).scalars().all()
            await conn.execute(outbox.delete().where(outbox.c.event_id == owed))
            await conn.execute(sessions.delete().where(sessions.c.sid == live))
            await conn.commit()
    finally:
        await engine.dispose()
    assert purged == 1 and kept == [long_ago + timedelta(days=100)] and failures == []
    assert sids == [live] and rows == [owed]  # the relay still owes the unpublished one
