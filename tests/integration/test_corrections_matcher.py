"""The matcher and corrections: only changed children are matched again, once per version;
reviews of changed children are superseded, of withdrawn ones closed."""

from __future__ import annotations

import copy
import random
import string
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from schemas.envelope import wrap
from schemas.incidents import ChildWithdrawn, IncidentCorrected, IncidentIn, IncidentReceived
from schemas.matching import child_id_for
from services.common.db import service_engine
from services.common.models import outbox
from services.common.sealing import sealing_of
from services.matcher.content import opened_review
from services.matcher.handlers import (
    MatcherDeps,
    on_child_withdrawn,
    on_incident_corrected,
    on_incident_received,
)
from services.matcher.index import RosterCache
from services.matcher.models import match_decisions, reviews
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


def family() -> str:
    # a family of this test's own: the session database is shared with every other test
    return "".join(random.choices(string.ascii_lowercase, k=9)).title()


def born() -> str:
    return (date(2012, 1, 1) + timedelta(days=random.randint(0, 2500))).isoformat()


def reported(given: str, family_name: str, birth: str, line1: str | None = None,
             postcode: str | None = None) -> dict[str, Any]:
    return {"given_name": given, "family_name": family_name, "date_of_birth": birth,
            "address": {"line1": line1, "postcode": postcode} if line1 else None}


async def world(settings) -> dict[str, Any]:
    """Zara on school x's roll, Yusuf on y's, and two Olivers alike on both (a review)."""
    la, x, y = next_la(), next_urn(), next_urn()
    w = {"x": x, "y": y, "zara": (family(), born()), "yusuf": (family(), born()),
         "oliver": (family(), born())}
    await seed(settings, las=[la], school_rows=[
        {"urn": x, "name": "X School", "la_code": la, "postcode": "WV1 1AA"},
        {"urn": y, "name": "Y School", "la_code": la, "postcode": "WV9 9ZZ"}], pupil_rows=[
        pupil(x, "", "Zara", *w["zara"], address_line1="7 Ash Grove", postcode="WV1 1AA"),
        pupil(y, "", "Yusuf", *w["yusuf"], address_line1="9 Elm Rise", postcode="WV9 9ZZ"),
        pupil(x, "", "Oliver", *w["oliver"], address_line1="1 High St", postcode="WV1 1AA"),
        pupil(y, "", "Oliver", *w["oliver"], address_line1="99 Low Rd", postcode="WV9 9ZZ")])
    w["children"] = {
        "zara": reported("Zara", *w["zara"], "7 Ash Grove", "WV1 1AA"),
        "yusuf": reported("Yusuf", *w["yusuf"], "9 Elm Rise", "WV9 9ZZ"),
        "oliver": reported("Oliver", *w["oliver"])}
    return w


def body_of(*children: dict[str, Any]) -> dict[str, Any]:
    return incident_body(children=[copy.deepcopy(c) for c in children])


def received(incident_id: uuid.UUID, body: dict[str, Any]) -> Any:
    return wrap(IncidentReceived(incident_id=incident_id, received_at=NOW,
                                 incident=IncidentIn.model_validate(body),
                                 disclosure_fields=["occurred_at"]))


def corrected(incident_id: uuid.UUID, body: dict[str, Any], version: int, changed: list[int],
              withdrawn: list[int] | None = None) -> Any:
    return wrap(IncidentCorrected(
        incident_id=incident_id, version=version, received_at=NOW,
        incident=IncidentIn.model_validate(body), changed_children=changed,
        withdrawn_children=withdrawn or [], disclosure_fields=["occurred_at", "summary"]))


async def staged(deps: MatcherDeps, incident_id: uuid.UUID) -> list[dict[str, Any]]:
    async with deps.engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.value).where(
            outbox.c.key == str(incident_id)).order_by(outbox.c.id))).all()
    return [sealing_of(deps.engine).opened_json(r.value) for r in rows]


async def reviews_of(deps: MatcherDeps, incident_id: uuid.UUID) -> list[Any]:
    async with deps.engine.connect() as conn:
        return [opened_review(conn, row) for row in await conn.execute(select(reviews).where(
            reviews.c.incident_id == incident_id).order_by(reviews.c.version))]


async def test_only_changed_children_are_matched_again_once_per_version(settings, deps) -> None:
    w = await world(settings)
    incident_id = uuid.uuid4()
    kids = w["children"]
    await on_incident_received(received(incident_id, body_of(kids["zara"], kids["oliver"])),
                               deps=deps)
    first = await staged(deps, incident_id)
    assert [(e["type"], e["payload"]["child_index"]) for e in first] == [
        ("ChildMatched", 0), ("ChildNeedsReview", 1)]

    # police had the wrong second child: it is Yusuf, at school y
    fixed = body_of(kids["zara"], kids["yusuf"])
    await on_incident_corrected(corrected(incident_id, fixed, 2, [1]), deps=deps)
    await on_incident_corrected(corrected(incident_id, fixed, 2, [1]), deps=deps)  # new id
    later = (await staged(deps, incident_id))[len(first):]
    assert [(e["type"], e["payload"]["child_index"], e["payload"]["version"]) for e in later] == [
        ("ChildMatched", 1, 2)]
    assert [s["urn"] for s in later[0]["payload"]["schools"]] == [w["y"]]
    assert later[0]["payload"]["incident"]["disclosure_fields"] == ["occurred_at", "summary"]
    assert later[0]["payload"]["child_id"] == str(child_id_for(incident_id, 1))
    [review] = await reviews_of(deps, incident_id)
    assert (review.status, review.resolved_at) == ("superseded", NOW)

    # and then it was an Oliver after all: a review of its own, for version 3
    await on_incident_corrected(corrected(incident_id, body_of(kids["zara"], kids["oliver"]), 3,
                                          [1]), deps=deps)
    queued = (await staged(deps, incident_id))[-1]
    assert (queued["type"], queued["payload"]["version"]) == ("ChildNeedsReview", 3)
    assert [(r.version, r.status) for r in await reviews_of(deps, incident_id)] == [
        (1, "superseded"), (3, "open")]
    async with deps.engine.connect() as conn:
        decided = (await conn.execute(select(match_decisions).where(
            match_decisions.c.incident_id == incident_id)
            .order_by(match_decisions.c.child_index))).all()
    assert [(d.status, d.version) for d in decided] == [("matched", 1), ("review", 3)]


async def test_a_withdrawn_child_closes_its_review_and_untouched_reviews_follow_the_version(
        settings, deps) -> None:
    w = await world(settings)
    incident_id = uuid.uuid4()
    kids = w["children"]
    body = body_of(kids["oliver"], kids["zara"])
    await on_incident_received(received(incident_id, body), deps=deps)
    moved = copy.deepcopy(body)
    moved["summary"] = "Corrected summary."
    moved["children"][1]["gender"] = "F"
    await on_incident_corrected(corrected(incident_id, moved, 2, [1]), deps=deps)
    [review] = await reviews_of(deps, incident_id)
    assert (review.status, review.version) == ("open", 2)
    assert review.incident["summary"] == "Corrected summary."

    withdrawn = wrap(ChildWithdrawn(incident_id=incident_id, force_code="WMP", child_index=0,
                                    withdrawn_at=NOW, reason="not related to the adults"))
    await on_child_withdrawn(withdrawn, deps=deps)
    await on_child_withdrawn(withdrawn, deps=deps)
    [review] = await reviews_of(deps, incident_id)
    assert (review.status, review.resolved_at) == ("withdrawn", NOW)


async def test_children_dropped_by_a_correction_lose_their_review(settings, deps) -> None:
    w = await world(settings)
    incident_id = uuid.uuid4()
    kids = w["children"]
    await on_incident_received(received(incident_id, body_of(kids["zara"], kids["oliver"])),
                               deps=deps)
    before = len(await staged(deps, incident_id))
    await on_incident_corrected(corrected(incident_id, body_of(kids["zara"]), 2, [], [1]),
                                deps=deps)
    assert len(await staged(deps, incident_id)) == before
    [review] = await reviews_of(deps, incident_id)
    assert review.status == "withdrawn"
