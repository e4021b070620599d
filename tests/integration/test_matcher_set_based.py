"""The matcher's set-based consumer against the real database: a poll of new incidents gives
what one at a time gives, in a constant number of statements, exactly once."""

from __future__ import annotations

import json
import random
import string
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from schemas.envelope import Envelope, wrap
from schemas.incidents import IncidentIn, IncidentReceived, IncidentWithdrawn
from schemas.matching import child_id_for, versioned
from services.common.db import UnitOfWork, service_engine
from services.common.events import apply_values
from services.common.models import outbox
from services.common.sealing import ChildSealing
from services.common.settings import Settings
from services.matcher.content import opened_review
from services.matcher.handlers import HANDLERS, MatcherDeps, on_incident_received
from services.matcher.index import RosterCache
from services.matcher.models import match_decisions, reviews
from tests.support.db import executemanys, statements
from tests.support.ids import next_la, next_urn
from tests.support.incidents import incident_body
from tests.support.registry import pupil, seed

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
STATUSES = ["matched", "review", "unmatched"]  # the children of every incident, in order


@dataclass
class Woken:
    decided: list[str] = field(default_factory=list)
    published: int = 0

    def publish(self) -> None:
        self.published += 1


@pytest.fixture
def woken() -> Woken:
    return Woken()


@pytest.fixture
async def deps(settings: Settings, woken: Woken) -> AsyncIterator[MatcherDeps]:
    engine = service_engine(settings, "matcher", pool_size=2)
    yield MatcherDeps(engine=engine, roster=RosterCache(engine),
                      topic_prefix=settings.topic_prefix, clock=lambda: NOW,
                      published=woken.publish, on_decided=woken.decided.append)
    await engine.dispose()


def _name() -> str:
    # every test's children are unlike every other's (the session database is shared)
    return "".join(random.choices(string.ascii_lowercase, k=9)).title()


@pytest.fixture
async def body(settings: Settings) -> dict[str, Any]:
    """A report of three children: one on one roll, one on two rolls under the same name and
    birthday (a review), one on none."""
    la, north, south = next_la(), next_urn(), next_urn()
    family, twin, born = _name(), _name(), date(2014, 1, 1) + timedelta(days=random.randint(0, 900))
    await seed(settings, las=[la], school_rows=[
        {"urn": north, "name": "North Primary", "la_code": la, "postcode": "B1 1AA"},
        {"urn": south, "name": "South Primary", "la_code": la, "postcode": "B9 9ZZ"},
    ], pupil_rows=[
        pupil(north, "", "Zara", family, born.isoformat(), address_line1="7 Ash Grove",
              postcode="B1 1AA"),
        pupil(north, "", "Ollie", twin, born.isoformat(), gender="M", address_line1="1 High St",
              postcode="B1 1AA"),
        pupil(south, "", "Ollie", twin, born.isoformat(), gender="M", address_line1="9 Low Rd",
              postcode="B9 9ZZ"),
    ])
    report = incident_body()
    first = report["children"][0]
    first.pop("upn")
    report["children"] = [
        first | {"given_name": "Zara", "family_name": family, "date_of_birth": born.isoformat(),
                 "school_hint": None, "address": {"line1": "7 Ash Grove", "postcode": "B1 1AA"}},
        first | {"given_name": "Ollie", "family_name": twin, "date_of_birth": born.isoformat(),
                 "gender": "M", "school_hint": None, "address": None},
        first | {"given_name": "Quentin", "family_name": _name(), "school_hint": None,
                 "date_of_birth": born.isoformat(), "address": None},
    ]
    return report


def received(incident_id: uuid.UUID, body: dict[str, Any]) -> Envelope[Any]:
    return wrap(IncidentReceived(incident_id=incident_id, received_at=NOW,
                                 incident=IncidentIn.model_validate(body),
                                 disclosure_fields=["occurred_at", "summary"]))


def withdrawn(incident_id: uuid.UUID, at: datetime = NOW) -> Envelope[Any]:
    return wrap(IncidentWithdrawn(incident_id=incident_id, force_code="WMP", withdrawn_at=at,
                                  reason="error"))


async def apply_poll(deps: MatcherDeps, envelopes: list[Envelope[Any]]) -> None:
    """One poll as the consumer applies it: wire values, one transaction."""
    async with UnitOfWork(deps.engine) as uow:
        await apply_values([e.model_dump_json().encode() for e in envelopes], HANDLERS,
                           deps=deps, uow=uow)
        await uow.commit()


def _placeholders(incident_id: uuid.UUID, children: int) -> dict[str, str]:
    ids = {str(incident_id): "INCIDENT"}
    for index in range(children):
        child_id = child_id_for(incident_id, index)
        ids[str(child_id)] = f"CHILD{index}"
        ids[str(uuid.uuid5(child_id, versioned("review", 1)))] = f"REVIEW{index}"
        for kind in ("ChildMatched", "ChildNeedsReview", "ChildUnmatched"):
            ids[str(uuid.uuid5(child_id, versioned(kind, 1)))] = f"EVENT{index}"
    return ids


def _neutral(value: Any, ids: dict[str, str]) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    for real, placeholder in ids.items():
        text = text.replace(real, placeholder)
    return text


async def stored(deps: MatcherDeps, settings: Settings, incident_id: uuid.UUID
                 ) -> dict[str, Any]:
    """All the matcher stored and staged for an incident, its ids made neutral."""
    ids = _placeholders(incident_id, len(STATUSES))
    sealing = ChildSealing.from_settings(settings)
    async with deps.engine.connect() as conn:
        decided = (await conn.execute(select(match_decisions).where(
            match_decisions.c.incident_id == incident_id)
            .order_by(match_decisions.c.child_index))).all()
        queued = [opened_review(conn, row) for row in (await conn.execute(
            select(reviews).where(reviews.c.incident_id == incident_id)
            .order_by(reviews.c.child_index))).all()]
        staged = (await conn.execute(select(outbox.c.topic, outbox.c.key, outbox.c.value).where(
            outbox.c.key == str(incident_id)).order_by(outbox.c.id))).all()
    return {
        "decisions": [_neutral(dict(row._mapping), ids) for row in decided],
        "reviews": [_neutral(vars(row), ids) for row in queued],
        "outbox": [_neutral([row.topic, row.key, sealing.parse(row.value).model_dump(
            mode="json")], ids) for row in staged],
    }




async def test_a_poll_stores_and_stages_what_one_at_a_time_does(settings, deps, woken, body
                                                                ) -> None:
    alone = [uuid.uuid4() for _ in range(3)]
    for incident_id in alone:
        await on_incident_received(received(incident_id, body), deps=deps)
    together = [uuid.uuid4() for _ in range(5)]
    woken.decided.clear()
    woken.published = 0
    await apply_poll(deps, [received(incident_id, body) for incident_id in together])

    expected = await stored(deps, settings, alone[0])
    assert [json.loads(d)["status"] for d in expected["decisions"]] == STATUSES
    assert len(expected["reviews"]) == 1 and len(expected["outbox"]) == len(STATUSES)
    review = json.loads(expected["reviews"][0])
    assert review["deadline_at"] and review["la_code"] and review["status"] == "open"
    assert len(review["candidates"]) == 2  # both rolls with that name and birthday
    assert all(c["explanation"] for c in review["candidates"])
    for incident_id in [*alone[1:], *together]:
        assert await stored(deps, settings, incident_id) == expected
    assert woken.decided == STATUSES * len(together)
    assert woken.published == 1  # the relay is woken once per poll, after its commit


async def test_the_statements_of_a_poll_do_not_grow_with_its_incidents(deps, body) -> None:
    await deps.roster.get()  # the index is built once, before any poll
    with statements(deps.engine) as one:
        await apply_poll(deps, [received(uuid.uuid4(), body)])
    with statements(deps.engine) as fifty, executemanys(deps.engine) as per_row:
        await apply_poll(deps, [received(uuid.uuid4(), body) for _ in range(50)])
    # the roster's version, the claims, withdrawn, already decided, decisions, reviews, outbox
    assert fifty == one and len(one) == 7  # word for word: prepared once, whatever the count
    assert per_row == []  # each statement runs once for the poll (the outbox's was once a row)


async def test_redelivery_inside_and_across_polls_adds_nothing(settings, deps, woken, body
                                                               ) -> None:
    incident_id = uuid.uuid4()
    first = received(incident_id, body)
    poll = [first, first, received(incident_id, body)]  # redelivered, and a second event id
    await apply_poll(deps, poll)
    once = await stored(deps, settings, incident_id)
    assert len(once["outbox"]) == len(STATUSES) and len(once["reviews"]) == 1
    await apply_poll(deps, poll)
    assert await stored(deps, settings, incident_id) == once
    assert woken.decided == STATUSES


async def test_an_incident_withdrawn_inside_the_poll_is_not_matched(settings, deps, body
                                                                    ) -> None:
    kept, dropped, queued = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    later = NOW + timedelta(minutes=5)
    await apply_poll(deps, [
        received(kept, body), received(queued, body),
        withdrawn(dropped), withdrawn(queued, later),  # one run of two withdrawals
        received(dropped, body)])
    assert (await stored(deps, settings, dropped)) == {"decisions": [], "reviews": [],
                                                       "outbox": []}
    assert len((await stored(deps, settings, kept))["outbox"]) == len(STATUSES)
    async with deps.engine.connect() as conn:
        closed = (await conn.execute(select(reviews.c.incident_id, reviews.c.status,
                                            reviews.c.resolved_at).where(
            reviews.c.incident_id.in_([kept, queued])))).all()
    assert {(r.incident_id, r.status, r.resolved_at) for r in closed} == {
        (kept, "open", None), (queued, "withdrawn", later)}
