"""PostgreSQL restarting at the worst moments: under load (the API answers 503, never 500,
and the matcher's consumer dead-letters nothing) and while the dispatcher is mid-send."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from schemas import topics
from services.common.db import service_engine, standalone_uow
from services.notifier.models import notifications
from tests.chaos.checks import query, wait_for
from tests.chaos.drivers import Police
from tests.support.api import new_police_client
from tests.support.directory import notifier_knows_la, notifier_knows_school
from tests.support.incidents import incident_body
from tests.support.kafka import read_topic
from tests.support.stack import Stack

pytestmark = pytest.mark.chaos
INCIDENTS = 300


async def restart_postgres(stack: Stack) -> None:
    """Three restarts of PostgreSQL, a second apart, while the load runs."""
    for hard in (True, False, True):
        await asyncio.sleep(1.5)
        await asyncio.to_thread(stack.restart, "postgres", hard=hard)


@pytest.mark.parametrize("stack", [("ingest", "matcher")], indirect=True)
async def test_database_restarts_are_503_and_never_dead_letter(stack: Stack) -> None:
    settings = stack.settings()
    police = Police(stack.url("ingest"), *await new_police_client(settings, "WMP"))
    bodies = [incident_body() for _ in range(INCIDENTS)]
    await asyncio.gather(police.post_all(bodies, over_s=10), restart_postgres(stack))

    assert police.statuses[503] > 0, "the restarts were never seen"
    assert police.statuses[500] == 0, police.statuses
    assert len(police.accepted) == INCIDENTS
    assert stack.postgres is not None
    owner = stack.postgres.owner_url

    async def decided() -> bool:
        rows = await query(owner, "SELECT count(*) AS n FROM matcher.match_decisions")
        return bool(rows[0]["n"] == INCIDENTS)

    assert await wait_for(decided, seconds=60)
    parked = await read_topic(settings.kafka(), topics.dlq(topics.INCIDENTS))
    assert not parked, f"{len(parked)} incidents dead-lettered while PostgreSQL restarted"
    # a failure counted against the message is one step of five towards the dead-letter topic
    log = (stack.logs / "matcher.log").read_text()
    assert "handler failed on" not in log and "batch failed on" not in log


@pytest.mark.parametrize("stack", [("notifier",)], indirect=True)
async def test_a_crash_between_sending_and_marking_leaves_every_link_working(
    stack: Stack,
) -> None:
    """PostgreSQL crashes while the dispatcher is mid-send: the e-mail goes out again under
    the same Message-ID (at least once), and the sign-in link in each copy works."""
    settings = stack.settings()
    urn, now = "654321", datetime.now(UTC)
    engine = service_engine(settings, "notifier", pool_size=1)
    try:  # the stack runs the notifier alone: its copy of the registry is seeded directly
        await notifier_knows_la(engine, "LINK1")
        await notifier_knows_school(engine, urn, "LINK1", name="Link Primary", contacts=[
            {"role": "dsl", "name": "Key Adult", "email": "dsl@link.test"}])
    finally:
        await engine.dispose()
    stack.mail.delay_s = 3
    async with standalone_uow(settings, "notifier") as uow:
        await uow.conn.execute(insert(notifications).values(
            id=uuid.uuid4(), incident_id=uuid.uuid4(), recipient_key=f"school:{urn}",
            school_urn=urn, la_code="LINK1", recipient_role="dsl", state="scheduled",
            incident={"force_code": "WMP", "incident_type": "domestic_abuse",
                      "disclosure_fields": []},
            push_at=now, deputy_at=now + timedelta(hours=6), la_at=now + timedelta(hours=7),
            created_at=now))
        await uow.commit()
    assert await asyncio.to_thread(stack.mail.receiving.wait, 30), "no e-mail was sent"
    await asyncio.to_thread(stack.restart, "postgres")  # the row lock's connection dies
    stack.mail.delay_s = 0
    assert stack.postgres is not None
    owner = stack.postgres.owner_url

    async def sent() -> bool:
        rows = await query(owner, "SELECT status FROM notifier.notifier_emails")
        return [r["status"] for r in rows] == ["sent"]

    assert await wait_for(sent, seconds=60)
    copies = stack.mail.messages
    assert len(copies) == 2 and copies[0].message_id == copies[1].message_id
    stored = {r["token_hash"] for r in await query(
        owner, "SELECT token_hash FROM notifier.notifier_sign_in_links")}
    for copy in copies:
        token = re.search(r"token=([A-Za-z0-9_-]+)", copy.body)
        assert token, copy.body
        assert hashlib.sha256(token[1].encode()).hexdigest() in stored, (
            "an e-mail that went out carries a sign-in link that was never stored")
