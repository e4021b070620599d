"""The LA officer's pages of the one portal, against the real database and an in-process
matcher called with the officer's own token: the navigation their scopes allow, the review
queue with its countdowns, the side-by-side review, resolving with a reason (and the
matcher's refusals as an error summary), and the LA's own notifications."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.matching import ChildUnmatched
from services.common.local_time import LONDON
from services.common.models import outbox
from services.common.settings import Settings
from services.matcher.main import build_app as build_matcher
from services.matcher.models import reviews
from services.notifier.handlers import NotifierDeps, on_child_unmatched
from services.notifier.portal_reviews import comparison, countdown
from tests.support.clock import Clock
from tests.support.ids import next_la, next_urn
from tests.support.notifier import add_school, child, facts, rows_for
from tests.support.portal import csrf_of, new_dsl, new_person, portal_client, sign_in
from tests.support.registry import pupil, seed

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(("left", "text"), [
    (timedelta(hours=1, minutes=20), "school day starts in 1 hour 20 minutes"),
    (timedelta(minutes=5), "school day starts in 5 minutes"),
    (timedelta(hours=3), "school day starts in 3 hours"),
    (timedelta(minutes=1, seconds=59), "school day starts in 1 minute"),
    (timedelta(seconds=59), "overdue: school day started less than a minute ago"),
    (timedelta(0), "overdue: school day started less than a minute ago"),
    (-timedelta(hours=2), "overdue: school day started 2 hours ago"),
], ids=["hours-and-minutes", "minutes", "whole-hours", "rounds-down", "under-a-minute",
        "at-the-deadline", "past"])
def test_the_countdown_in_words(left: timedelta, text: str) -> None:
    assert countdown(NOW + left, NOW, "school day").text == text


def test_each_candidate_cell_says_in_words_whether_it_agrees() -> None:
    rows = comparison({"given_name": "Oliver", "date_of_birth": "2017-05-05"}, [
        {"given_name": "Olly", "preferred_name": "", "date_of_birth": "2017-05-05",
         "agreements": {"given_name": "nickname", "date_of_birth": "exact",
                        "address": "disagree", "name_order": "swapped"}},
        {"given_name": "Oliver", "agreements": {"given_name": "exact"}}])
    by_label = {r["label"]: r for r in rows}
    assert by_label["Date of birth"]["child"] == "5 May 2017"
    assert [c["words"] for c in by_label["Given name"]["cells"]] == [
        "Agrees (nickname)", "Agrees"]
    assert [c["mark"] for c in by_label["Address"]["cells"]] == ["disagree", "unknown"]
    assert by_label["Name order"]["cells"][0]["words"] == "Given and family names swapped"


@dataclass
class Desk:
    """An LA with two candidate schools per review, and a second LA."""

    la: str
    other_la: str


@dataclass
class Queued:
    """A review in the matcher's queue: two pupils alike at two schools."""

    review_id: uuid.UUID
    child_id: uuid.UUID
    north: str
    south: str
    family: str


def _family() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=9)).title()


@pytest.fixture
async def desk(settings: Settings) -> Desk:
    desk = Desk(next_la(), next_la())
    await seed(settings, las=[desk.la, desk.other_la], school_rows=[], pupil_rows=[])
    return desk


def candidate(urn: str, school: str, family: str, line1: str, postcode: str,
              address: str) -> dict[str, Any]:
    """A candidate as the matcher shows one: the pupil, the score, each field's level."""
    return {"urn": urn, "school_name": school, "upn": "", "given_name": "Oliver",
            "preferred_name": "", "family_name": family, "former_family_name": "",
            "date_of_birth": "2017-05-05", "gender": "M", "address_line1": line1,
            "postcode": postcode, "enrolment_status": "C", "score": 21.5,
            "agreements": {"given_name": "exact", "family_name": "exact",
                           "date_of_birth": "exact", "gender": "agree", "address": address,
                           "upn": "missing"}}


async def queue_review(settings: Settings, matcher_engine: AsyncEngine, la: str, *,
                       created_at: datetime, deadline_at: datetime) -> Queued:
    """Two schools of the LA with an Oliver of the same name and birthday on roll, and the
    review the matcher queued for the reported Oliver (who lives at the south one's address)."""
    north, south, family = next_urn(), next_urn(), _family()
    await seed(settings, las=[], school_rows=[
        {"urn": north, "name": "North Primary", "la_code": la, "postcode": "B1 1AA"},
        {"urn": south, "name": "South Primary", "la_code": la, "postcode": "B9 9ZZ"},
    ], pupil_rows=[
        pupil(north, "", "Oliver", family, "2017-05-05", gender="M", address_line1="1 High St",
              postcode="B1 1AA"),
        pupil(south, "", "Oliver", family, "2017-05-05", gender="M", address_line1="99 Low Rd",
              postcode="B9 9ZZ")])
    incident_id, review_id = uuid.uuid4(), uuid.uuid4()
    child_id = uuid.uuid5(incident_id, "0")
    reported = {"given_name": "Oliver", "family_name": family, "date_of_birth": "2017-05-05",
                "gender": "M", "address": {"line1": "99 Low Rd", "postcode": "B9 9ZZ"},
                "present_at_incident": True}
    incident = facts(incident_id).model_dump(mode="json")
    async with matcher_engine.begin() as conn:
        await conn.execute(insert(reviews).values(
            review_id=review_id, incident_id=incident_id, child_index=0, child_id=child_id,
            la_code=la, child=reported, incident=incident, reason="two pupils score alike",
            created_at=created_at, deadline_at=deadline_at, candidates=[
                candidate(north, "North Primary", family, "1 High St", "B1 1AA", "disagree"),
                candidate(south, "South Primary", family, "99 Low Rd", "B9 9ZZ",
                          "same_household")]))
    return Queued(review_id, child_id, north, south, family)


@pytest.fixture
async def matcher_app(settings: Settings, clock: Clock) -> AsyncIterator[Any]:
    """The matcher's routes on the test's clock, without its consumer or relay."""
    app = build_matcher(settings)
    app.state.ctx.clock = clock
    yield app
    await app.state.ctx.engine.dispose()


@pytest.fixture
async def la_portal(settings: Settings, notifier_engine: AsyncEngine, clock: Clock,
                    notifier_deps: NotifierDeps, matcher_app: Any
                    ) -> AsyncIterator[httpx.AsyncClient]:
    """The portal, its review pages calling the in-process matcher."""
    async with portal_client(settings, notifier_engine, clock, notifier_deps,
                             matcher=matcher_app) as client:
        yield client


async def officer_signed_in(portal: httpx.AsyncClient, settings: Settings, clock: Clock,
                            la: str) -> None:
    email, totp = await new_person(settings, "la_officer", las=[la])
    assert (await sign_in(portal, clock, email, totp)).status_code == 303


async def matcher_staged(matcher_engine: AsyncEngine, settings: Settings, topic: str,
                         mark: uuid.UUID) -> list[bytes]:
    async with matcher_engine.connect() as conn:
        values = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == settings.topic("matcher"),
            outbox.c.topic == settings.topic(topic)))).scalars().all()
    return [v for v in values if str(mark).encode() in v]


async def test_one_sign_in_and_the_sections_each_persons_scopes_allow(
    la_portal: httpx.AsyncClient, settings: Settings, clock: Clock, desk: Desk,
    notifier_engine: AsyncEngine,
) -> None:
    school = await add_school(notifier_engine)
    email, totp = await new_dsl(settings, school)
    await sign_in(la_portal, clock, email, totp)
    home = await la_portal.get("/portal/")
    assert '<a href="#main-content" class="govuk-skip-link"' in home.text
    assert '<main class="govuk-main-wrapper" id="main-content" tabindex="-1">' in home.text
    assert 'href="/portal/" aria-current="page"><strong class="govuk-service-navigation__' \
           'active-fallback">Notifications</strong></a>' in home.text
    assert "/portal/open-items" not in home.text  # the LA's desk is for LA officers
    assert "/portal/reviews" not in home.text  # a DSL holds no reviews:read
    refused = await la_portal.get("/portal/reviews")
    assert refused.status_code == 303 and refused.headers["location"] == "/portal/sign-in"
    la_portal.cookies.clear()
    await officer_signed_in(la_portal, settings, clock, desk.la)
    queue = await la_portal.get("/portal/reviews")
    assert queue.status_code == 200 and ">Review queue</h1>" in queue.text
    assert 'href="/portal/reviews" aria-current="page"><strong' in queue.text
    assert 'href="/portal/open-items">Open items</a>' in queue.text
    assert 'href="/portal/">Notifications</a>' in queue.text


async def test_the_queue_lists_the_las_reviews_nearest_deadline_first_with_countdowns(
    la_portal: httpx.AsyncClient, settings: Settings, clock: Clock, desk: Desk,
    matcher_engine: AsyncEngine,
) -> None:
    await officer_signed_in(la_portal, settings, clock, desk.la)
    now = clock.now
    later = await queue_review(settings, matcher_engine, desk.la, created_at=now - timedelta(
        hours=2), deadline_at=now + timedelta(hours=3))
    sooner = await queue_review(settings, matcher_engine, desk.la, created_at=now - timedelta(
        minutes=10), deadline_at=now + timedelta(hours=1, minutes=20))
    late = await queue_review(settings, matcher_engine, desk.la, created_at=now - timedelta(
        hours=1), deadline_at=now - timedelta(minutes=5))
    theirs = await queue_review(settings, matcher_engine, desk.other_la, created_at=now,
                                deadline_at=now + timedelta(minutes=1))
    page = (await la_portal.get("/portal/reviews")).text
    at = [page.index(f"/portal/reviews/{q.review_id}") for q in (late, sooner, later)]
    assert at == sorted(at) and str(theirs.review_id) not in page
    for words in ("overdue: school day started 5 minutes ago",
                  "school day starts in 1 hour 20 minutes", "school day starts in 3 hours"):
        assert f">{words}</span>" in page
    assert page.count('<meter class="app-time-bar"') == 3
    assert ">Overdue: 1</strong>" in page and ">Due within 2 hours: 1</strong>" in page
    assert ">Due later: 1</strong>" in page
    overdue = (await la_portal.get("/portal/reviews?state=overdue")).text
    assert str(late.review_id) in overdue and str(sooner.review_id) not in overdue
    assert all(q.family not in page for q in (later, sooner, late))  # the queue names no child


async def test_the_review_page_shows_the_child_beside_each_candidate_audited_by_the_matcher(
    la_portal: httpx.AsyncClient, settings: Settings, clock: Clock, desk: Desk,
    matcher_engine: AsyncEngine,
) -> None:
    await officer_signed_in(la_portal, settings, clock, desk.la)
    queued = await queue_review(settings, matcher_engine, desk.la, created_at=clock.now,
                                deadline_at=clock.now + timedelta(minutes=45))
    page = await la_portal.get(f"/portal/reviews/{queued.review_id}")
    assert page.status_code == 200, page.text
    text = page.text
    assert '<div class="app-table-scroll" role="region" aria-labelledby="compare-title" ' \
           'tabindex="0">' in text
    assert "Candidate 1<span class=\"app-sub\">North Primary (URN " in text
    assert "Candidate 2<span class=\"app-sub\">South Primary (URN " in text
    assert text.count(f"Oliver {queued.family}") >= 2 and "5 May 2017" in text
    assert '<span class="app-mark app-mark--disagree">Disagrees</span>' in text
    assert '<span class="app-mark app-mark--agree">Agrees (same household)</span>' in text
    assert '<span class="app-mark app-mark--unknown">Not compared: not given</span>' in text
    assert ">school day starts in 45 minutes</span>" in text
    assert "app-explanation" not in text  # the matcher gave no explanation: none shown
    for value in (f"school:{queued.north}:", f"school:{queued.south}:", "outcome:not_on_roll",
                  "outcome:not_school_age", "outcome:home_educated"):
        assert f'value="{value}"' in text
    assert 'for="choice-1">Candidate 1: Oliver' in text and 'for="reason">Reason' in text
    assert "Which candidate is the reported child?</legend>" in text
    views = await matcher_staged(matcher_engine, settings, "disclosures.v1", queued.review_id)
    assert any(b'"review.view"' in v and b'"la_officer"' in v for v in views)
    # the matcher audits the portal's reads as the portal's (the officer's own token)
    assert all(b'"channel":"portal"' in v.replace(b" ", b"") for v in views
               if b'"review.' in v)
    other = await queue_review(settings, matcher_engine, desk.other_la, created_at=clock.now,
                               deadline_at=clock.now)
    foreign = await la_portal.get(f"/portal/reviews/{other.review_id}")
    assert foreign.status_code == 404 and other.family not in foreign.text
    assert (await la_portal.get("/portal/reviews/not-a-uuid")).status_code == 404


async def test_resolving_to_a_candidate_with_a_reason_sends_the_child_to_that_school(
    la_portal: httpx.AsyncClient, settings: Settings, clock: Clock, desk: Desk,
    matcher_engine: AsyncEngine,
) -> None:
    await officer_signed_in(la_portal, settings, clock, desk.la)
    queued = await queue_review(settings, matcher_engine, desk.la, created_at=clock.now,
                                deadline_at=clock.now + timedelta(hours=2))
    page = await la_portal.get(f"/portal/reviews/{queued.review_id}")
    done = await la_portal.post(f"/portal/reviews/{queued.review_id}/resolve", data={
        "csrf": csrf_of(page), "choice": f"school:{queued.south}:",
        "reason": "Same household address as the report"})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/portal/reviews?resolved=1"
    queue = await la_portal.get(done.headers["location"])
    assert 'role="alert"' in queue.text and "Review resolved.</p>" in queue.text
    assert str(queued.review_id) not in queue.text
    async with matcher_engine.connect() as conn:
        row = (await conn.execute(select(reviews).where(
            reviews.c.review_id == queued.review_id))).one()
    assert row.status == "resolved" and row.resolution["urns"] == [queued.south]
    [event] = await matcher_staged(matcher_engine, settings, "matches.v1", queued.child_id)
    assert b'"ChildMatched"' in event and queued.south.encode() in event
    assert queued.north.encode() not in event


async def test_a_bad_form_or_the_matchers_refusal_is_an_error_summary_above_the_form(
    la_portal: httpx.AsyncClient, settings: Settings, clock: Clock, desk: Desk,
    matcher_engine: AsyncEngine,
) -> None:
    await officer_signed_in(la_portal, settings, clock, desk.la)
    queued = await queue_review(settings, matcher_engine, desk.la, created_at=clock.now,
                                deadline_at=clock.now + timedelta(hours=2))
    url = f"/portal/reviews/{queued.review_id}/resolve"
    page = await la_portal.get(f"/portal/reviews/{queued.review_id}")
    empty = await la_portal.post(url, data={"csrf": csrf_of(page), "reason": "  "})
    assert empty.status_code == 422
    assert 'class="govuk-error-summary"' in empty.text and '<div role="alert">' in empty.text
    assert "<title>Error: " in empty.text and 'aria-describedby="choice-error"' in empty.text
    assert '<a href="#choice-1">Choose the pupil' in empty.text
    assert '<a href="#reason">Give the reason' in empty.text
    # a school that is not among the candidates: the matcher's 422, its words, the reason kept
    elsewhere = await la_portal.post(url, data={"csrf": csrf_of(page),
                                                "choice": f"school:{next_urn()}:",
                                                "reason": "A guess"})
    assert elsewhere.status_code == 422
    summary = elsewhere.text.split('class="govuk-error-summary"')[1].split("</ul>")[0]
    assert "candidate" in summary and ">A guess</textarea>" in elsewhere.text
    assert (await la_portal.post(url, data={"choice": "outcome:not_on_roll",
                                            "reason": "x"})).status_code == 403  # no CSRF
    async with matcher_engine.connect() as conn:
        status = (await conn.execute(select(reviews.c.status).where(
            reviews.c.review_id == queued.review_id))).scalar()
    assert status == "open"
    resolved = await la_portal.post(url, data={"csrf": csrf_of(page),
                                               "choice": "outcome:not_on_roll",
                                               "reason": "Left the area in the summer"})
    assert resolved.status_code == 303
    again = await la_portal.post(url, data={"csrf": csrf_of(page),
                                            "choice": "outcome:home_educated", "reason": "x"})
    assert again.status_code == 409 and "already" in again.text
    assert 'name="choice"' not in again.text  # a resolved review offers no form


async def test_the_la_officer_opens_and_acknowledges_what_was_sent_to_the_la(
    la_portal: httpx.AsyncClient, settings: Settings, clock: Clock,
    notifier_engine: AsyncEngine, notifier_deps: NotifierDeps,
) -> None:
    school = await add_school(notifier_engine)
    incident_id = uuid.uuid4()
    await on_child_unmatched(wrap(ChildUnmatched(
        child_id=uuid.uuid4(), child_index=0, incident=facts(incident_id), child=child("Ola"),
        la_code=school.la, reason="not_on_roll", decided_by="engine", decided_at=NOW)),
        deps=notifier_deps)
    [row] = await rows_for(notifier_engine, incident_id)
    await officer_signed_in(la_portal, settings, clock, school.la)
    inbox = await la_portal.get("/portal/")
    assert f"/portal/notifications/{row.id}" in inbox.text
    assert f"Local authority {school.la}" in inbox.text and "Okafor" not in inbox.text
    # the LA's desk: the open item, its owner, deadline and who is told next
    assert "Your local authority's open items" in inbox.text
    assert inbox.text.count(f"/portal/notifications/{row.id}") == 2
    assert 'data-label="Owner now">the LA&#39;s safeguarding contact</td>' in inbox.text
    desk_page = await la_portal.get("/portal/open-items")
    assert desk_page.status_code == 200 and f"/portal/notifications/{row.id}" in desk_page.text
    assert ">Notifications: 1</strong>" in desk_page.text
    page = await la_portal.get(f"/portal/notifications/{row.id}")
    assert "Ola Okafor" in page.text and "On no school&#39;s roll" in page.text
    assert "Record attendance" not in page.text  # the school's to answer, not the LA's
    ack = await la_portal.post(f"/portal/notifications/{row.id}/acknowledge", data={
        "csrf": csrf_of(page), "action": "childrens_social_care",
        "on-childrens_social_care": clock.now.astimezone(LONDON).date().isoformat()})
    assert ack.status_code == 303
    [acked] = await rows_for(notifier_engine, incident_id)
    assert acked.state == "acknowledged" and acked.action_taken is None
    after = await la_portal.get("/portal/")
    assert after.text.count(f"/portal/notifications/{row.id}") == 1  # off the desk, listed
