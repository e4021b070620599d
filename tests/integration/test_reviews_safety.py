"""Safe, audited reviews against the real database: deadlines from the candidates' calendars,
the force's default LA, resolution only to a candidate (no answer tells who is on which roll),
every candidate shown and every resolution audited, the view the force's profile allows, and
the cross-LA handover."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas import topics
from schemas.disclosures import DisclosureRecorded
from schemas.envelope import Envelope, wrap
from schemas.incidents import IncidentIn, IncidentReceived
from schemas.matching import ChildMatched, ChildNeedsReview, ChildUnmatched
from services.common.db import UnitOfWork, service_engine
from services.common.problems import Problem
from services.common.pseudonym import child_key
from services.common.settings import Settings
from services.matcher.content import opened_review
from services.matcher.handlers import MatcherDeps, on_incident_received
from services.matcher.index import RosterCache
from services.matcher.main import build_app as build_matcher
from services.matcher.models import local_authorities, reviews, school_calendar_days
from services.matcher.registry import import_calendar
from services.matcher.retention import purge_reviews
from services.matcher.reviews import chosen_candidate
from tests.support.clock import Clock
from tests.support.ids import next_la, next_urn
from tests.support.incidents import incident_body
from tests.support.registry import PREFIX, pupil, seed, staged_by_matcher
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
# Friday 27 November 2026, 18:00 in London (GMT): the next school day is Monday 30th
NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
MONDAY = date(2026, 11, 30)
SAFEGUARDING = {"role": "safeguarding", "name": "LADO", "email": "lado@other.example"}


@dataclass
class World:
    """Two schools of one LA with the same child on roll (a review), and a third school
    holding the north pupil's UPN under other details (a dual registration, no candidate)."""

    la: str
    other_la: str
    north: str
    south: str
    east: str
    upn: str
    given: str
    family: str
    born: date


def _name() -> str:
    # every test's child is unlike every other's (the session database is shared)
    return "".join(random.choices(string.ascii_lowercase, k=9)).title()


def _upn() -> str:
    return random.choice(string.ascii_uppercase) + "".join(random.choices(string.digits, k=12))


@pytest.fixture
async def world(settings: Settings, matcher_engine: AsyncEngine) -> World:
    w = World(next_la(), next_la(), next_urn(), next_urn(), next_urn(), _upn(), _name(),
              _name(), date(2016, 1, 1) + timedelta(days=random.randint(0, 900)))
    await seed(settings, las=[w.la], school_rows=[
        {"urn": w.north, "name": "North Primary", "la_code": w.la, "postcode": "B1 1AA",
         "day_starts_at": datetime(2000, 1, 1, 8, 30).time()},
        {"urn": w.south, "name": "South Primary", "la_code": w.la, "postcode": "B9 9ZZ",
         "day_starts_at": datetime(2000, 1, 1, 8, 50).time()},
        {"urn": w.east, "name": "East Academy", "la_code": w.la, "postcode": "B5 5EE"},
    ], pupil_rows=[
        pupil(w.north, w.upn, w.given, w.family, w.born.isoformat(), gender="M",
              address_line1="1 High St", postcode="B1 1AA"),
        pupil(w.south, _upn(), w.given, w.family, w.born.isoformat(), gender="M",
              address_line1="99 Low Rd", postcode="B9 9ZZ"),
        pupil(w.east, w.upn, "Xavierre", "Quillfeather", "2011-02-03"),
    ])
    # north keeps Monday as an INSET day: south (08:50) opens before north (08:30, Tuesday)
    async with matcher_engine.begin() as conn:
        await conn.execute(insert(local_authorities).values(
            la_code=w.other_la, name="Other LA", contacts=[SAFEGUARDING]))
        await conn.execute(insert(school_calendar_days).values(
            urn=w.north, day=MONDAY, kind="closed"))
    return w


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def deps(settings: Settings, clock: Clock) -> AsyncIterator[MatcherDeps]:
    engine = service_engine(settings, "matcher", pool_size=2)
    yield MatcherDeps(engine=engine, roster=RosterCache(engine),
                      topic_prefix=settings.topic_prefix, clock=clock, published=lambda: None)
    await engine.dispose()


@pytest.fixture
async def matcher(settings: Settings, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    """The matcher's routes on a pinned clock, without its consumer or relay."""
    app: FastAPI = build_matcher(settings)
    app.state.ctx.clock = clock
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        yield client
    await app.state.ctx.engine.dispose()


def officer(*las: str) -> dict[str, str]:
    return bearer(person("la_officer", las=las, subject=f"officer-{'-'.join(las)}"))


def report(w: World, **child: Any) -> dict[str, Any]:
    body = incident_body()
    body["children"][0].update({"given_name": w.given, "family_name": w.family,
                                "date_of_birth": w.born.isoformat(), "address": None,
                                "school_hint": None} | child)
    body["children"][0].pop("upn")
    return body


async def decide(deps: MatcherDeps, body: dict[str, Any], *, fields: list[str] | None = None,
                 default_la: str | None = None) -> uuid.UUID:
    incident_id = uuid.uuid4()
    event = IncidentReceived(incident_id=incident_id, received_at=NOW,
                             incident=IncidentIn.model_validate(body),
                             disclosure_fields=["occurred_at"] if fields is None else fields,
                             default_la_code=default_la)
    await on_incident_received(wrap(event), deps=deps)
    return incident_id


async def queued(deps: MatcherDeps, settings: Settings, incident_id: uuid.UUID
                 ) -> list[Envelope[Any]]:
    return [e for e in await staged_by_matcher(deps.engine, settings, topics.REVIEWS)
            if e.payload.incident_id == incident_id]


async def review_of(deps: MatcherDeps, settings: Settings, w: World, **kw: Any) -> str:
    incident_id = await decide(deps, report(w), **kw)
    [event] = await queued(deps, settings, incident_id)
    return str(event.payload.review_id)


async def disclosures(settings: Settings, deps: MatcherDeps, review_id: str
                      ) -> list[DisclosureRecorded]:
    return [e.payload for e in await staged_by_matcher(deps.engine, settings, topics.DISCLOSURES)
            if isinstance(e.payload, DisclosureRecorded) and str(e.payload.review_id) == review_id]


async def outcome_of(deps: MatcherDeps, review_id: str) -> Any:
    """The review row as stored, its sealed content opened."""
    async with deps.engine.connect() as conn:
        row = (await conn.execute(select(reviews).where(
            reviews.c.review_id == uuid.UUID(review_id)))).one()
        return opened_review(conn, row)


# --- the deadline, the default LA -----------------------------------------------------------

async def test_a_review_is_due_at_the_earliest_candidate_school_start(
    settings: Settings, deps: MatcherDeps, world: World, matcher: httpx.AsyncClient
) -> None:
    incident_id = await decide(deps, report(world))
    [event] = await queued(deps, settings, incident_id)
    payload = event.payload
    assert isinstance(payload, ChildNeedsReview) and payload.la_code == world.la
    # north is closed on Monday (INSET), south opens at 08:50 on Monday
    assert payload.deadline_at == datetime(2026, 11, 30, 8, 50, tzinfo=UTC)
    assert payload.candidates == 2 and payload.handed_over_from is None
    row = await outcome_of(deps, str(payload.review_id))
    assert row.deadline_at == payload.deadline_at
    [listed] = [r for r in (await matcher.get("/v1/reviews", headers=officer(world.la))).json()
                if r["review_id"] == str(payload.review_id)]
    minutes = int((payload.deadline_at - NOW).total_seconds() // 60)
    assert (listed["deadline_at"], listed["minutes_left"], listed["handover_to"]) == (
        payload.deadline_at.isoformat(), minutes, None)


async def test_a_calendar_import_reaches_the_snapshot_without_rebuilding_the_index(
    settings: Settings, deps: MatcherDeps, world: World
) -> None:
    before = await deps.roster.get()
    assert before.schools[world.north].calendar.is_school_day(MONDAY) is False
    await import_calendar(world.north, f"urn,date,kind\n{world.north},2026-12-01,closed\n"
                          .encode(), uow=UnitOfWork(deps.engine), now=datetime.now(UTC),
                          topic_prefix=PREFIX)
    after = await deps.roster.get()
    assert after.schools[world.north].calendar.is_school_day(MONDAY) is True
    assert after.schools[world.north].calendar.is_school_day(date(2026, 12, 1)) is False
    assert after.index is before.index  # no roll changed


async def test_a_child_with_nothing_to_go_on_goes_to_the_forces_default_la(
    settings: Settings, deps: MatcherDeps
) -> None:
    default_la = next_la()
    nobody = incident_body()
    nobody["children"][0].update(given_name=_name(), family_name=_name(), address=None,
                                 school_hint=None)
    nobody["children"][0].pop("upn")
    incident_id = await decide(deps, nobody, default_la=default_la)
    [event] = [e for e in await staged_by_matcher(deps.engine, settings, topics.MATCHES)
               if e.payload.incident.incident_id == incident_id]
    assert isinstance(event.payload, ChildUnmatched) and event.payload.la_code == default_la
    # an LA found another way still wins over the default
    la, school = next_la(), next_urn()
    await seed(settings, las=[la], pupil_rows=[], school_rows=[
        {"urn": school, "name": "Hinted", "la_code": la}])
    hinted = incident_body()
    hinted["children"][0].update(given_name=_name(), family_name=_name(), address=None,
                                 school_hint={"urn": school})
    hinted["children"][0].pop("upn")
    hinted_id = await decide(deps, hinted, default_la=default_la)
    [event] = [e for e in await staged_by_matcher(deps.engine, settings, topics.MATCHES)
               if e.payload.incident.incident_id == hinted_id]
    assert event.payload.la_code == la


# --- resolution only to a candidate ----------------------------------------------------------

async def test_only_a_candidate_resolves_and_no_answer_tells_who_is_on_a_roll(
    settings: Settings, deps: MatcherDeps, world: World, matcher: httpx.AsyncClient
) -> None:
    review_id = await review_of(deps, settings, world)
    url, me = f"/v1/reviews/{review_id}/resolve", officer(world.la)

    async def refused(body: dict[str, Any]) -> dict[str, Any]:
        resp = await matcher.post(url, json=body, headers=me)
        assert resp.status_code == 422, resp.text
        answer: dict[str, Any] = resp.json()
        return answer

    # east has the north pupil's UPN on its roll, a made-up school has nobody: same answer
    on_a_roll = await refused({"urn": world.east, "upn": world.upn})
    assert on_a_roll == await refused({"urn": next_urn(), "upn": _upn()})
    assert on_a_roll == await refused({"urn": world.east})
    assert on_a_roll["errors"] == [{"field": "urn",
                                    "message": "must be one of this review's candidate schools"}]
    # a candidate school with a UPN it does not hold for this child: the field is named
    wrong_upn = await refused({"urn": world.south, "upn": world.upn})
    assert wrong_upn == await refused({"urn": world.south, "upn": _upn()})
    assert [e["field"] for e in wrong_upn["errors"]] == ["upn"]
    assert (await refused({"outcome": "not_on_roll", "reason": "x" * 501}))["errors"]
    assert (await refused({"outcome": "adopted"}))["errors"]

    resolved = await matcher.post(url, headers=me, json={
        "urn": world.north, "upn": world.upn.lower(), "reason": "Mother confirmed the school"})
    assert resolved.status_code == 200, resolved.text
    # east is told too (dual registration) but is no candidate: only counted
    assert resolved.json() == {"review_id": review_id, "status": "matched",
                               "urns": [world.north], "other_schools": 1}
    row = await outcome_of(deps, review_id)
    [matched] = [e.payload for e in await staged_by_matcher(deps.engine, settings, topics.MATCHES)
                 if isinstance(e.payload, ChildMatched) and e.payload.child_id == row.child_id]
    assert [(s.urn, s.upn) for s in matched.schools] == [(world.north, world.upn),
                                                         (world.east, world.upn)]
    assert matched.decided_by == "review"
    assert row.resolution == {"status": "matched", "urns": [world.north, world.east],
                              "outcome": None, "reason": "Mother confirmed the school"}
    [audited] = [d for d in await disclosures(settings, deps, review_id)
                 if d.action == "review.resolve"]
    assert (audited.purpose, audited.school_urn, audited.la_code, audited.actor) == (
        "match review resolved: matched", world.north, world.la, f"officer-{world.la}")
    assert (await matcher.post(url, json={"outcome": "not_on_roll"}, headers=me)
            ).status_code == 409


async def test_an_outcome_resolution_is_audited_with_the_outcome(
    settings: Settings, deps: MatcherDeps, world: World, matcher: httpx.AsyncClient
) -> None:
    review_id = await review_of(deps, settings, world)
    resp = await matcher.post(f"/v1/reviews/{review_id}/resolve", headers=officer(world.la),
                              json={"outcome": "home_educated"})
    assert resp.json() == {"review_id": review_id, "status": "unmatched", "urns": [],
                           "other_schools": 0}
    [audited] = [d for d in await disclosures(settings, deps, review_id)
                 if d.action == "review.resolve"]
    assert audited.purpose == "match review resolved: home_educated"
    assert audited.school_urn is None
    [event] = [e.payload for e in await staged_by_matcher(deps.engine, settings, topics.MATCHES)
               if isinstance(e.payload, ChildUnmatched) and e.payload.decided_by == "review"
               and e.payload.child.family_name == world.family]
    assert (event.reason, event.la_code) == ("home_educated", world.la)


@pytest.mark.parametrize(("candidates", "urn", "upn", "picked", "field"), [
    pytest.param([{"urn": "100001", "upn": ""}, {"urn": "100001", "upn": ""}], "100001", None,
                 0, None, id="twins-without-upns-one-school"),
    pytest.param([{"urn": "100001", "upn": "A"}, {"urn": "100001", "upn": "B"}], "100001", None,
                 None, "upn", id="two-upns-at-one-school-need-the-upn"),
    pytest.param([{"urn": "100001", "upn": "A"}, {"urn": "100001", "upn": "B"}], "100001", "B",
                 1, None, id="the-upn-picks-one"),
    pytest.param([{"urn": "100001", "upn": ""}], "100001", "A", None, "upn",
                 id="a-upn-the-candidate-lacks"),
    pytest.param([{"urn": "100001", "upn": "A"}], "100002", None, None, "urn",
                 id="not-a-candidate-school"),
])
def test_chosen_candidate(candidates: list[dict[str, str]], urn: str, upn: str | None,
                          picked: int | None, field: str | None) -> None:
    if field is None:
        assert picked is not None
        assert chosen_candidate(candidates, urn=urn, upn=upn) is candidates[picked]
        return
    with pytest.raises(Problem) as caught:
        chosen_candidate(candidates, urn=urn, upn=upn)
    assert caught.value.extra["errors"][0]["field"] == field


# --- opening: every candidate audited, the force's profile ---------------------------------

async def test_opening_audits_the_child_and_each_candidate_and_follows_the_profile(
    settings: Settings, deps: MatcherDeps, world: World, matcher: httpx.AsyncClient
) -> None:
    incident_id = await decide(deps, report(world, address={"line1": "5 Middle Way"}),
                               fields=["occurred_at"])
    [event] = await queued(deps, settings, incident_id)
    review_id = str(event.payload.review_id)
    resp = await matcher.get(f"/v1/reviews/{review_id}", headers=officer(world.la))
    assert resp.status_code == 200, resp.text
    view = resp.json()
    # the matching evidence always; what the child said and the summary only by the profile
    assert set(view["child"]) == {"given_name", "family_name", "date_of_birth", "gender",
                                  "address", "upn", "school_hint"}
    assert view["child"]["address"]["line1"] == "5 Middle Way"
    assert set(view["incident"]) == {"incident_id", "force_code", "occurred_at"}
    assert (view["deadline_at"], view["handover_to"], view["handover"]) == (
        "2026-11-30T08:50:00+00:00", None, None)
    assert view["minutes_left"] == int((datetime(2026, 11, 30, 8, 50, tzinfo=UTC) - NOW
                                        ).total_seconds() // 60)
    assert sorted(c["urn"] for c in view["candidates"]) == sorted([world.north, world.south])
    assert all(c["agreements"]["family_name"] and c["agreements"]["date_of_birth"]
               for c in view["candidates"])

    secret = settings.child_key_secret.get_secret_value()
    child = child_key(secret, given_name=world.given, family_name=world.family,
                      date_of_birth=world.born)
    seen = await disclosures(settings, deps, review_id)
    assert sorted((d.action, d.school_urn, d.child_key) for d in seen) == sorted([
        ("review.view", None, child),
        *(("review.candidate.view", c["urn"], child_key(
            secret, given_name=c["given_name"], family_name=c["family_name"],
            date_of_birth=date.fromisoformat(c["date_of_birth"]))) for c in view["candidates"]),
    ])
    assert {(d.purpose, d.la_code, d.channel) for d in seen} == {("match review", world.la,
                                                                  "api")}

    generous = await decide(deps, report(world), fields=["voice_of_child", "summary",
                                                         "present_at_incident"])
    [event] = await queued(deps, settings, generous)
    shown = (await matcher.get(f"/v1/reviews/{event.payload.review_id}",
                               headers=officer(world.la))).json()
    assert shown["child"]["voice_of_child"] and shown["child"]["present_at_incident"] is True
    assert shown["incident"]["summary"]


# --- handover --------------------------------------------------------------------------------

async def test_a_handover_shows_to_both_las_and_the_accepting_la_owns_it(
    settings: Settings, deps: MatcherDeps, world: World, matcher: httpx.AsyncClient
) -> None:
    review_id = await review_of(deps, settings, world)
    ours, theirs = officer(world.la), officer(world.other_la)
    url = f"/v1/reviews/{review_id}/handover"
    assert (await matcher.get(f"/v1/reviews/{review_id}", headers=theirs)).status_code == 404
    nobody_there = next_la()
    await seed(settings, las=[nobody_there], school_rows=[], pupil_rows=[])  # no contacts
    for bad in (world.la, next_la(), nobody_there):
        resp = await matcher.post(url, json={"to_la": bad, "reason": "r"}, headers=ours)
        assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "to_la"
    assert (await matcher.post(url, json={"to_la": world.other_la}, headers=ours)
            ).status_code == 422  # a reason is required

    offered = await matcher.post(url, headers=ours, json={
        "to_la": world.other_la.lower(), "reason": "The family moved last week"})
    assert offered.status_code == 200, offered.text
    assert offered.json() == {"review_id": review_id, "la_code": world.la,
                              "handover_to": world.other_la, "handover_at": NOW.isoformat()}
    [audited] = [d for d in await disclosures(settings, deps, review_id)
                 if d.action == "review.handover"]
    assert (audited.la_code, audited.actor) == (world.other_la, f"officer-{world.la}")
    assert world.family not in audited.purpose and "moved" not in audited.purpose
    for who in (ours, theirs):
        [listed] = [r for r in (await matcher.get("/v1/reviews", headers=who)).json()
                    if r["review_id"] == review_id]
        assert listed["handover_to"] == world.other_la
    view = (await matcher.get(f"/v1/reviews/{review_id}", headers=theirs)).json()
    assert view["handover"] == {"to_la": world.other_la, "offered_by": f"officer-{world.la}",
                                "offered_at": NOW.isoformat(),
                                "reason": "The family moved last week"}
    assert {d.la_code for d in await disclosures(settings, deps, review_id)
            if d.action == "review.view"} == {world.other_la}
    # the LA it is offered to may not resolve it, nor hand it on; the owner cannot accept it
    resolve = f"/v1/reviews/{review_id}/resolve"
    assert (await matcher.post(resolve, json={"outcome": "not_on_roll"}, headers=theirs)
            ).status_code == 403
    assert (await matcher.post(url, json={"to_la": world.la, "reason": "r"}, headers=theirs)
            ).status_code == 403
    assert (await matcher.post(f"{url}/accept", headers=ours)).status_code == 409

    accepted = await matcher.post(f"{url}/accept", headers=theirs)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"review_id": review_id, "la_code": world.other_la,
                               "handed_over_from": world.la}
    first, again = await queued(deps, settings, (
        await outcome_of(deps, review_id)).incident_id)
    assert isinstance(again.payload, ChildNeedsReview)
    assert (again.payload.review_id, again.payload.la_code, again.payload.handed_over_from,
            again.payload.deadline_at) == (first.payload.review_id, world.other_la, world.la,
                                           first.payload.deadline_at)
    assert again.event_id != first.event_id and again.event_id.version == 5
    assert (await matcher.get(f"/v1/reviews/{review_id}", headers=ours)).status_code == 404
    assert (await matcher.post(f"{url}/accept", headers=theirs)).status_code == 409
    history = (await matcher.get(f"/v1/reviews/{review_id}", headers=theirs)).json()["handovers"]
    assert [(h["from_la"], h["to_la"], h["outcome"], h["reason"]) for h in history] == [
        (world.la, world.other_la, "accepted", "The family moved last week")]
    done = await matcher.post(resolve, json={"urn": world.south}, headers=theirs)
    assert done.status_code == 200 and done.json()["urns"] == [world.south]


async def test_a_declined_handover_stays_with_the_la_that_offered_it(
    settings: Settings, deps: MatcherDeps, world: World, matcher: httpx.AsyncClient
) -> None:
    review_id = await review_of(deps, settings, world)
    ours, theirs = officer(world.la), officer(world.other_la)
    url = f"/v1/reviews/{review_id}/handover"
    await matcher.post(url, json={"to_la": world.other_la, "reason": "Wrong area"}, headers=ours)
    assert (await matcher.post(f"{url}/decline", headers=ours)).status_code == 409
    declined = await matcher.post(f"{url}/decline", headers=theirs)
    assert declined.json() == {"review_id": review_id, "la_code": world.la,
                               "handover_to": None}
    assert (await matcher.get(f"/v1/reviews/{review_id}", headers=theirs)).status_code == 404
    view = (await matcher.get(f"/v1/reviews/{review_id}", headers=ours)).json()
    assert (view["la_code"], view["handover_to"]) == (world.la, None)
    assert [h["outcome"] for h in view["handovers"]] == ["declined"]
    assert len(await queued(deps, settings, (
        await outcome_of(deps, review_id)).incident_id)) == 1  # no re-route
    resolved = await matcher.post(f"/v1/reviews/{review_id}/resolve", headers=ours,
                                  json={"outcome": "not_on_roll", "reason": "Left the area"})
    assert resolved.status_code == 200
    assert (await matcher.post(url, json={"to_la": world.other_la, "reason": "late"},
                               headers=ours)).status_code == 409


async def test_retention_erases_what_officers_wrote(
    settings: Settings, deps: MatcherDeps, world: World, matcher: httpx.AsyncClient
) -> None:
    review_id = await review_of(deps, settings, world)
    ours = officer(world.la)
    await matcher.post(f"/v1/reviews/{review_id}/handover", headers=ours,
                       json={"to_la": world.other_la, "reason": "Lives with an aunt"})
    await matcher.post(f"/v1/reviews/{review_id}/handover/decline",
                       headers=officer(world.other_la))
    await matcher.post(f"/v1/reviews/{review_id}/resolve", headers=ours,
                       json={"urn": world.south, "reason": "Aunt named the school"})
    long_ago = NOW - timedelta(days=200)
    async with deps.engine.begin() as conn:
        await conn.execute(update(reviews).where(reviews.c.review_id == uuid.UUID(review_id))
                           .values(resolved_at=long_ago))
        assert await purge_reviews(conn, cutoff=NOW - timedelta(days=90), now=NOW) >= 1
    row = await outcome_of(deps, review_id)
    assert row.resolution == {"status": "matched", "urns": [world.south], "outcome": None}


async def test_a_review_queued_before_deadlines_falls_back_to_the_default_calendar(
    settings: Settings, deps: MatcherDeps, matcher: httpx.AsyncClient
) -> None:
    la, review_id, incident_id = next_la(), uuid.uuid4(), uuid.uuid4()
    async with deps.engine.begin() as conn:
        await conn.execute(insert(reviews).values(
            review_id=review_id, incident_id=incident_id, child_index=0,
            child_id=uuid.uuid5(incident_id, "0"), la_code=la, child={"given_name": "A"},
            incident={}, candidates=[], created_at=NOW - timedelta(hours=1)))
    [listed] = (await matcher.get("/v1/reviews", headers=officer(la))).json()
    assert (listed["deadline_at"], listed["minutes_left"]) == ("2026-11-30T08:45:00+00:00",
                                                               3765)
    assert listed["minutes_until_school_day"] == 3765
