"""The matcher's handlers against the real database: exactly once, withdrawals, closed schools."""

from __future__ import annotations

import dataclasses
import random
import string
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import func, select

from schemas.envelope import wrap
from schemas.incidents import IncidentIn, IncidentReceived, IncidentWithdrawn
from services.common.db import service_engine
from services.common.events import apply_records
from services.common.models import outbox
from services.matcher.handlers import (
    HANDLERS,
    MatcherDeps,
    on_incident_received,
    on_incident_withdrawn,
)
from services.matcher.index import RosterCache
from services.matcher.models import match_decisions
from tests.support.ids import next_la, next_urn
from tests.support.incidents import incident_body
from tests.support.registry import pupil, seed

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
async def deps(settings):
    engine = service_engine(settings, "matcher", pool_size=2)
    yield MatcherDeps(engine=engine, roster=RosterCache(engine), topic_prefix=settings.topic_prefix,
                      clock=lambda: NOW, published=lambda: None)
    await engine.dispose()


def received(incident_id: uuid.UUID, body: dict, event_id: uuid.UUID | None = None):
    event = IncidentReceived(incident_id=incident_id, received_at=NOW,
                             incident=IncidentIn.model_validate(body),
                             disclosure_fields=["occurred_at"])
    return wrap(event, event_id=event_id or uuid.uuid4())


async def staged(deps: MatcherDeps, incident_id: uuid.UUID) -> list[bytes]:
    async with deps.engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.value).where(
            outbox.c.key == str(incident_id)))).all()
    return [r.value for r in rows]


async def seeded_child(settings, *, status: str = "open", **pupil_kw) -> tuple[str, dict]:
    # every test's child is unlike every other's (the session database is shared), so
    # no earlier test's pupil can be a plausible candidate
    la, school = next_la(), next_urn()
    family = "".join(random.choices(string.ascii_lowercase, k=9)).title()
    born = date(2012, 1, 1) + timedelta(days=random.randint(0, 2500))
    await seed(settings, las=[la], school_rows=[
        {"urn": school, "name": "Test School", "la_code": la, "status": status}],
        pupil_rows=[pupil(school, "", "Zara", family, born.isoformat(),
                          address_line1="7 Ash Grove", postcode="WV1 1AA", **pupil_kw)])
    body = incident_body()
    body["children"][0].update(given_name="Zara", family_name=family,
                               date_of_birth=born.isoformat(), school_hint=None,
                               address={"line1": "7 Ash Grove", "postcode": "WV1 1AA"})
    body["children"][0].pop("upn")
    return school, body


async def test_redelivery_and_a_second_event_id_decide_each_child_once(settings, deps) -> None:
    school, body = await seeded_child(settings)
    incident_id = uuid.uuid4()
    first = received(incident_id, body)
    await on_incident_received(first, deps=deps)
    await on_incident_received(first, deps=deps)  # redelivered
    await on_incident_received(received(incident_id, body), deps=deps)  # same incident, new id
    values = await staged(deps, incident_id)
    assert len(values) == 1
    assert b'"ChildMatched"' in values[0] and school.encode() in values[0]
    async with deps.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).where(
            match_decisions.c.incident_id == incident_id))).scalar_one()
    assert count == 1


async def test_withdrawn_incident_is_never_matched(settings, deps) -> None:
    _, body = await seeded_child(settings)
    incident_id = uuid.uuid4()
    withdrawn = wrap(IncidentWithdrawn(incident_id=incident_id, force_code="WMP",
                                       withdrawn_at=NOW, reason="error"))
    await on_incident_withdrawn(withdrawn, deps=deps)
    await on_incident_received(received(incident_id, body), deps=deps)
    assert await staged(deps, incident_id) == []


async def test_closed_school_and_left_roll_never_match(settings, deps) -> None:
    _, closed_body = await seeded_child(settings, status="closed")
    _, left_body = await seeded_child(settings, on_roll_to=datetime(2026, 7, 20).date())
    for body in (closed_body, left_body):
        incident_id = uuid.uuid4()
        await on_incident_received(received(incident_id, body), deps=deps)
        values = await staged(deps, incident_id)
        assert len(values) == 1 and b'"ChildMatched"' not in values[0]


def as_record(envelope) -> ConsumerRecord:
    return ConsumerRecord(topic="incidents.v1", partition=0, offset=0, timestamp=0,
                          timestamp_type=0, key=None, value=envelope.model_dump_json().encode(),
                          checksum=None, serialized_key_size=0, serialized_value_size=0,
                          headers=())


async def test_a_poll_is_applied_in_one_transaction_in_order(settings) -> None:
    engine = service_engine(settings, "matcher", pool_size=2)
    woken: list[str] = []
    deps = MatcherDeps(engine=engine, roster=RosterCache(engine), topic_prefix="",
                       clock=lambda: NOW, published=lambda: woken.append("relay"),
                       on_decided=woken.append)
    try:
        _, kept = await seeded_child(settings)
        _, dropped = await seeded_child(settings)
        kept_id, dropped_id = uuid.uuid4(), uuid.uuid4()
        poll = [received(kept_id, kept),
                wrap(IncidentWithdrawn(incident_id=dropped_id, force_code="WMP",
                                       withdrawn_at=NOW, reason="error")),
                received(dropped_id, dropped)]  # withdrawn earlier in the same poll
        await apply_records([as_record(e) for e in poll], HANDLERS, deps=deps)
        assert len(await staged(deps, kept_id)) == 1
        assert await staged(deps, dropped_id) == []
        assert woken == ["matched", "relay"]  # only after the commit

        woken.clear()
        good_id = uuid.uuid4()
        good = as_record(received(good_id, kept))
        poison = dataclasses.replace(good, value=b'{"not": "an event"}')
        with pytest.raises(ValueError):
            await apply_records([good, poison], HANDLERS, deps=deps)
        assert await staged(deps, good_id) == []  # the whole poll rolled back
        assert woken == []  # and nothing ran as if it had committed
    finally:
        await engine.dispose()
