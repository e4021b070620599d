"""The safety net against the real database: every open item has an owner, a deadline and a
next person, down to the LA's duty manager and the service desk."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.incidents import IncidentWithdrawn
from schemas.matching import ChildMatched, ChildNeedsReview, ChildUnmatched, SchoolMatch
from services.common.app import create_app
from services.common.models import outbox
from services.common.security import Principal
from services.notifier.api import open_items_router, router
from services.notifier.context import NotifierContext
from services.notifier.dispatch import Dispatcher
from services.notifier.handlers import (
    NotifierDeps,
    on_child_matched,
    on_child_unmatched,
    on_incident_withdrawn,
)
from services.notifier.models import emails, local_authorities, notification_children
from services.notifier.models import review_alerts as alerts
from services.notifier.open_items import open_items
from services.notifier.review_alerts import on_child_needs_review
from tests.support.clock import Clock
from tests.support.directory import notifier_knows_la_as, notifier_knows_school
from tests.support.ids import next_la, next_tag, next_urn
from tests.support.notifier import MATCHED_AT, PUSH_AT, child, facts, rows_for
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
DESK = "desk@safety.test"
LA_ROLES = ("safeguarding", "review", "duty_manager")


def monday(hour: int, minute: int = 0) -> datetime:
    """Monday 23 November 2026 (GMT: London's wall clock is UTC)."""
    return PUSH_AT.replace(hour=hour, minute=minute)


@dataclass
class Mailbox:
    """A mailer that keeps what it sends and refuses mail to the `failing` addresses."""

    sent: list[tuple[list[str], str]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)

    async def send(self, *, to: list[str], subject: str, body: str, message_id: str) -> None:
        if self.failing & set(to):
            raise ConnectionRefusedError("mailbox refuses")
        self.sent.append((to, f"{subject}\n{body}"))

    def to(self, address: str) -> list[str]:
        return [text for rcpt, text in self.sent if address in rcpt]


class NoWebhooks:
    """No school here has a webhook."""

    async def post(self, url: str, *, secret: str, body: bytes, timestamp: int,
                   delivery_id: str) -> None:
        raise AssertionError("no webhook expected")


@dataclass
class World:
    """One LA (contacts by role) and one school in the notifier's copy."""

    la: str
    urn: str
    school_name: str
    addr: dict[str, str]

    def officer(self) -> Principal:
        return person("la_officer", las=[self.la])


async def world(engine: AsyncEngine, *, la_roles: tuple[str, ...] = LA_ROLES,
                school_roles: tuple[str, ...] = ("dsl", "deputy_dsl"), before: int = 30,
                **school: Any) -> World:
    tag = next_tag()
    la, urn = next_la(), next_urn()
    addr = {role: f"{role}-{tag}@safety.test" for role in (*la_roles, *school_roles)}
    await notifier_knows_la_as(engine, la, escalation_before_minutes=before, contacts=[
        {"role": r, "name": r, "email": addr[r]} for r in la_roles])
    await notifier_knows_school(engine, urn, la, name=f"Oak {tag}", contacts=[
        {"role": r, "name": r, "email": addr[r]} for r in school_roles], **school)
    return World(la, urn, f"Oak {tag}", addr)


@pytest.fixture
def clock() -> Clock:
    return Clock(MATCHED_AT)


@pytest.fixture
def deps(notifier_engine: AsyncEngine, clock: Clock, settings: Any) -> NotifierDeps:
    return NotifierDeps(engine=notifier_engine, clock=clock, service_desk=DESK,
                        child_key_secret=settings.child_key_secret.get_secret_value())


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def dispatcher(notifier_engine: AsyncEngine, clock: Clock, mailbox: Mailbox) -> Dispatcher:
    return Dispatcher(engine=notifier_engine, clock=clock, mailer=mailbox,
                      webhooks=NoWebhooks(), portal_base_url="https://portal.test",
                      max_attempts=1, service_desk=DESK)


@pytest.fixture
async def api(settings: Any, notifier_engine: AsyncEngine, clock: Clock,
              deps: NotifierDeps) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings, engine=notifier_engine, clock=clock, deps=deps,
        registry=CollectorRegistry()))
    app.include_router(router)
    app.include_router(open_items_router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        yield client


async def at(clock: Clock, dispatcher: Dispatcher, moment: datetime) -> None:
    clock.now = moment
    await dispatcher.run_once()


def matched(incident_id: uuid.UUID, w: World, given: str = "Zara", *, index: int = 0,
            decided_by: str = "engine", at_: datetime = MATCHED_AT) -> Any:
    return wrap(ChildMatched(
        child_id=uuid.uuid5(incident_id, str(index)), child_index=index,
        incident=facts(incident_id), child=child(given), decided_by=decided_by,
        schools=[SchoolMatch(urn=w.urn, la_code=w.la, score=30)], matched_at=at_))


def unmatched(incident_id: uuid.UUID, la: str, *, index: int = 0, decided_by: str = "engine",
              at_: datetime = MATCHED_AT) -> Any:
    return wrap(ChildUnmatched(
        child_id=uuid.uuid5(incident_id, str(index)), child_index=index,
        incident=facts(incident_id), child=child("Ola"), la_code=la, reason="not_on_roll",
        decided_by=decided_by, decided_at=at_))


def needs_review(incident_id: uuid.UUID, la: str, *, index: int = 0,
                 deadline_at: datetime | None = None, handed_over_from: str | None = None,
                 queued_at: datetime = MATCHED_AT) -> Any:
    child_id = uuid.uuid5(incident_id, str(index))
    return wrap(ChildNeedsReview(
        child_id=child_id, child_index=index, incident_id=incident_id,
        review_id=uuid.uuid5(child_id, "review"), la_code=la, candidates=2,
        queued_at=queued_at, deadline_at=deadline_at, handed_over_from=handed_over_from),
        occurred_at=queued_at)


async def escalations_audited(engine: AsyncEngine, notification_id: uuid.UUID) -> list[str]:
    """The purposes of the escalation disclosures staged about the notification."""
    async with engine.connect() as conn:
        values = (await conn.execute(select(outbox.c.value).where(
            outbox.c.topic.like("%disclosures.v1")).order_by(outbox.c.id))).scalars().all()
    payloads = [json.loads(v)["payload"] for v in values]
    # other tests' disclosures share the session's outbox, some about no notification
    return [p["purpose"] for p in payloads if p.get("notification_id") == str(notification_id)
            and p["action"] == "notification.escalated"]


async def mail_rows(engine: AsyncEngine, **where: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(emails).where(
            *(getattr(emails.c, k) == v for k, v in where.items()))
            .order_by(emails.c.created_at))).all())


async def items_of(engine: AsyncEngine, w: World, now: datetime) -> list[Any]:
    async with engine.connect() as conn:
        return await open_items(conn, now=now, la_codes=[w.la], service_desk=DESK)


# --- a school's chain ------------------------------------------------------------------------


async def test_a_schools_notification_goes_dsl_deputy_la_then_duty_manager_until_acknowledged(
    notifier_engine, deps, clock, dispatcher, mailbox, api
) -> None:
    w = await world(notifier_engine, before=20)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, w), deps=deps)
    [row] = await rows_for(notifier_engine, incident_id)
    assert row.deadline_at == monday(9, 45)  # the DSL has until the deputy is told
    officer_principal = w.officer()
    officer = bearer(officer_principal)
    await at(clock, dispatcher, PUSH_AT)
    assert len(mailbox.to(w.addr["dsl"])) == 1
    assert (await api.get(f"/v1/notifications/{row.id}", headers=officer)).status_code == 404
    await at(clock, dispatcher, monday(9, 45))
    assert "escalated to you" in mailbox.to(w.addr["deputy_dsl"])[0]
    await at(clock, dispatcher, monday(10, 45))
    assert len(mailbox.to(w.addr["safeguarding"])) == 1
    [row] = await rows_for(notifier_engine, incident_id)
    assert (row.la_since, row.duty_at, row.deadline_at) == (monday(10, 45), monday(11, 5),
                                                            monday(11, 5))
    listed = (await api.get("/v1/notifications", headers=officer)).json()["items"]
    assert [(i["id"], i["owner"]) for i in listed] == [(str(row.id), "safeguarding")]
    for moment in (monday(11, 4), monday(11, 5), monday(12, 4), monday(12, 5)):
        await at(clock, dispatcher, moment)
    duty = mailbox.to(w.addr["duty_manager"])
    assert len(duty) == 2 and all("Zara" not in m and "Okafor" not in m for m in duty)
    [row] = await rows_for(notifier_engine, incident_id)
    assert (row.duty_calls, row.duty_at, row.deadline_at) == (2, monday(13, 5), monday(13, 5))
    [item] = await items_of(notifier_engine, w, clock.now)
    assert (item.kind, item.id, item.owner, item.next_at, item.next_role,
            item.next_addresses) == ("notification", row.id, "duty_manager", monday(13, 5),
                                     "duty_manager", [w.addr["duty_manager"]])
    assert await escalations_audited(notifier_engine, row.id) == [
        "unacknowledged: escalation_deputy to deputy_dsl",
        "unacknowledged: escalation_la to safeguarding",
        "unacknowledged: escalation_duty to duty_manager",
        "unacknowledged: escalation_duty to duty_manager"]

    details = await api.get(f"/v1/notifications/{row.id}", headers=officer)
    assert details.status_code == 200 and details.json()["children"][0]["given_name"] == "Zara"
    ack = await api.post(f"/v1/notifications/{row.id}/acknowledge", headers=officer,
                         json={"action_taken": "MASH"})
    assert ack.status_code == 200
    await at(clock, dispatcher, monday(15))
    assert len(mailbox.to(w.addr["duty_manager"])) == 2  # the calls stopped
    [row] = await rows_for(notifier_engine, incident_id)
    assert (row.state, row.acknowledged_by) == ("acknowledged", officer_principal.subject)
    assert await items_of(notifier_engine, w, clock.now) == []


async def test_dsls_still_see_only_their_own_schools_and_officers_only_their_las(
    notifier_engine, deps, clock, dispatcher, api
) -> None:
    mine, other = await world(notifier_engine), await world(notifier_engine)
    for w in (mine, other):
        await on_child_matched(matched(uuid.uuid4(), w), deps=deps)
    await at(clock, dispatcher, monday(11))  # both escalated to their LAs
    as_dsl = bearer(person("dsl", schools=[mine.urn]))
    assert [i["school_urn"] for i in (await api.get(
        "/v1/notifications", headers=as_dsl)).json()["items"]] == [mine.urn]
    assert [i["la_code"] for i in (await api.get(
        "/v1/notifications", headers=bearer(mine.officer()))).json()["items"]] == [mine.la]


# --- the LA's own items -----------------------------------------------------------------------


async def test_an_la_item_calls_the_duty_manager_before_the_las_deadline_then_hourly(
    notifier_engine, deps, clock, dispatcher, mailbox, api
) -> None:
    w = await world(notifier_engine)
    incident_id = uuid.uuid4()
    await on_child_unmatched(unmatched(incident_id, w.la), deps=deps)
    [row] = await rows_for(notifier_engine, incident_id)
    assert (row.push_at, row.deadline_at, row.duty_at) == (PUSH_AT, monday(9), monday(8, 30))
    for moment in (PUSH_AT, monday(8, 29)):
        await at(clock, dispatcher, moment)
    assert len(mailbox.to(w.addr["safeguarding"])) == 1 and mailbox.to(w.addr["duty_manager"]) == []
    for moment in (monday(8, 30), monday(9, 30)):
        await at(clock, dispatcher, moment)
    assert len(mailbox.to(w.addr["duty_manager"])) == 2
    ack = await api.post(f"/v1/notifications/{row.id}/acknowledge", json={},
                         headers=bearer(w.officer()))
    assert ack.status_code == 200
    await at(clock, dispatcher, monday(11))
    assert len(mailbox.to(w.addr["duty_manager"])) == 2


@pytest.mark.parametrize(("school", "reason"), [
    ({"participates": False}, "school_not_participating"),
    ({"status": "closed"}, "school_closed"),
    ({"school_roles": ()}, "school_not_ready"),
], ids=["not-participating", "closed", "not-ready"])
async def test_a_child_of_a_school_that_cannot_take_it_reaches_the_la_with_the_school(
    notifier_engine, deps, api, school: dict[str, Any], reason: str
) -> None:
    w = await world(notifier_engine, **school)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, w), deps=deps)
    [row] = await rows_for(notifier_engine, incident_id)
    assert (row.school_urn, row.recipient_key, row.duty_at) == (None, f"la:{w.la}",
                                                                monday(8, 30))
    details = (await api.get(f"/v1/notifications/{row.id}",
                             headers=bearer(w.officer()))).json()
    [shown] = details["children"]
    assert (shown["unmatched_reason"], shown["via_school_urn"], shown["via_school_name"]) == (
        reason, w.urn, w.school_name)


# --- fallbacks --------------------------------------------------------------------------------


async def test_no_deputy_goes_to_the_la_which_may_then_open_it(
    notifier_engine, deps, clock, dispatcher, mailbox, api
) -> None:
    w = await world(notifier_engine, school_roles=("dsl",))
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, w), deps=deps)
    for moment in (PUSH_AT, monday(9, 45)):
        await at(clock, dispatcher, moment)
    assert len(mailbox.to(w.addr["safeguarding"])) == 1
    [mail] = await mail_rows(notifier_engine, school_urn=w.urn, kind="escalation_deputy")
    assert mail.to_addrs == {"role": "safeguarding", "to": [w.addr["safeguarding"]]}
    [row] = await rows_for(notifier_engine, incident_id)
    assert (row.la_since, row.duty_at) == (monday(9, 45), monday(10, 15))
    assert (await api.get(f"/v1/notifications/{row.id}",
                          headers=bearer(w.officer()))).status_code == 200


async def test_an_la_with_nobody_in_a_role_falls_back_to_safeguarding_then_the_desk(
    notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    w = await world(notifier_engine, la_roles=("safeguarding",))
    await on_child_unmatched(unmatched(uuid.uuid4(), w.la), deps=deps)
    for moment in (PUSH_AT, monday(8, 30)):
        await at(clock, dispatcher, moment)
    assert len(mailbox.to(w.addr["safeguarding"])) == 2  # the notice, then the duty call
    [duty] = await mail_rows(notifier_engine, la_code=w.la, kind="escalation_duty")
    assert duty.to_addrs["role"] == "safeguarding"
    unknown = f"X{next_tag()}"[:8]  # an LA the copy has never heard of
    incident_id = uuid.uuid4()
    await on_child_unmatched(unmatched(incident_id, unknown, at_=monday(8, 50)), deps=deps)
    await at(clock, dispatcher, monday(9))
    assert len(mailbox.to(DESK)) == 1
    [notice] = await mail_rows(notifier_engine, la_code=unknown, kind="notice")
    assert notice.to_addrs == {"role": "service_desk", "to": [DESK]}
    [row] = await rows_for(notifier_engine, incident_id)
    async with notifier_engine.connect() as conn:
        [item] = [i for i in await open_items(conn, now=clock.now, la_codes=[unknown],
                                              service_desk=DESK)]
    assert (item.id, item.next_at, item.next_role, item.next_addresses) == (
        row.id, monday(9, 20), "service_desk", [DESK])
    await at(clock, dispatcher, monday(9, 20))
    assert "unacknowledged" in mailbox.to(DESK)[1]


# --- review alerts ----------------------------------------------------------------------------


async def test_a_review_alert_names_its_own_deadline_not_an_older_reviews(
    notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    w = await world(notifier_engine)
    await on_child_needs_review(needs_review(uuid.uuid4(), w.la, deadline_at=monday(8, 45)),
                                deps=deps)
    await at(clock, dispatcher, MATCHED_AT)
    # left open past its deadline; a review queued during the school day is due tomorrow
    later = monday(10, 0)
    await on_child_needs_review(needs_review(uuid.uuid4(), w.la, queued_at=later,
                                             deadline_at=later + timedelta(hours=22, minutes=45)),
                                deps=deps)
    await at(clock, dispatcher, later)
    newest = [m for m in mailbox.to(w.addr["review"]) if "a review is waiting" in m][-1]
    assert "deadline Tuesday 24 November, 8:45am" in newest


async def test_a_review_alerts_its_contact_then_calls_the_duty_manager_until_resolved(
    notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    w = await world(notifier_engine)
    incident_id = uuid.uuid4()
    review = needs_review(incident_id, w.la, deadline_at=monday(8, 45))
    for _ in range(2):  # a redelivery changes nothing
        await on_child_needs_review(review, deps=deps)
    await at(clock, dispatcher, MATCHED_AT)
    [alert] = mailbox.to(w.addr["review"])
    assert "a review is waiting" in alert and "deadline Monday 23 November, 8:45am" in alert
    assert "Okafor" not in alert and "Zara" not in alert
    [item] = await items_of(notifier_engine, w, clock.now)
    assert (item.kind, item.owner, item.deadline_at, item.next_at, item.next_role) == (
        "review", "review", monday(8, 45), monday(8, 15), "duty_manager")
    for moment in (monday(8, 14), monday(8, 15), monday(9, 15)):
        await at(clock, dispatcher, moment)
    overdue = mailbox.to(w.addr["duty_manager"])
    assert len(overdue) == 2 and "overdue" in overdue[0]
    await on_child_matched(matched(incident_id, w, decided_by="review", at_=monday(9, 20)),
                           deps=deps)
    await at(clock, dispatcher, monday(11))
    assert len(mailbox.to(w.addr["duty_manager"])) == 2 and len(mailbox.to(w.addr["review"])) == 1
    async with notifier_engine.connect() as conn:
        row = (await conn.execute(select(alerts).where(
            alerts.c.incident_id == incident_id))).one()
    assert (row.duty_calls, row.resolved_at, row.resolution) == (2, monday(9, 20), "matched")
    assert [i.kind for i in await items_of(notifier_engine, w, clock.now)] == ["notification"]


async def test_a_resolution_that_arrives_first_leaves_the_late_review_silent(
    notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    w = await world(notifier_engine)
    incident_id = uuid.uuid4()
    await on_child_unmatched(unmatched(incident_id, w.la, decided_by="review",
                                       at_=MATCHED_AT + timedelta(minutes=5)), deps=deps)
    await on_child_needs_review(needs_review(incident_id, w.la), deps=deps)
    await at(clock, dispatcher, monday(10))
    assert mailbox.to(w.addr["review"]) == []
    async with notifier_engine.connect() as conn:
        [row] = (await conn.execute(select(alerts).where(
            alerts.c.incident_id == incident_id))).all()
    assert row.resolution == "not_on_roll"
    assert all(i.kind == "notification" for i in await items_of(notifier_engine, w, clock.now))


async def test_a_handover_moves_the_alert_to_the_la_that_accepted_it(
    notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    first, second = await world(notifier_engine), await world(notifier_engine, before=60)
    incident_id = uuid.uuid4()
    await on_child_needs_review(needs_review(incident_id, first.la), deps=deps)  # no deadline
    await at(clock, dispatcher, MATCHED_AT)
    assert len(mailbox.to(first.addr["review"])) == 1
    accepted = MATCHED_AT + timedelta(hours=1)
    await on_child_needs_review(needs_review(incident_id, second.la, handed_over_from=first.la,
                                             queued_at=accepted), deps=deps)
    await at(clock, dispatcher, accepted)
    assert len(mailbox.to(second.addr["review"])) == 1
    assert len(mailbox.to(first.addr["review"])) == 1
    assert await items_of(notifier_engine, first, clock.now) == []
    [item] = await items_of(notifier_engine, second, clock.now)
    # the next school day's start (Monday 08:45) by the default calendar; 60 minutes before
    assert (item.deadline_at, item.next_at) == (monday(8, 45), monday(7, 45))


async def test_a_withdrawal_stops_the_chase_and_tells_the_la_it_had_escalated_to(
    notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    w = await world(notifier_engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, w), deps=deps)
    await on_child_needs_review(needs_review(incident_id, w.la, index=1), deps=deps)
    await at(clock, dispatcher, monday(11))
    await on_incident_withdrawn(wrap(IncidentWithdrawn(
        incident_id=incident_id, force_code="WMP", withdrawn_at=monday(11), reason="error")),
        deps=deps)
    await at(clock, dispatcher, monday(11, 1))
    assert any("withdrawn" in m for m in mailbox.to(w.addr["safeguarding"]))
    assert any("withdrawn" in m for m in mailbox.to(w.addr["dsl"]))
    assert await items_of(notifier_engine, w, clock.now) == []


# --- deliveries that fail for good ------------------------------------------------------------


async def test_a_dead_delivery_is_handed_on_along_the_line_once_each(
    notifier_engine, deps, clock, dispatcher, mailbox, api
) -> None:
    w = await world(notifier_engine)
    mailbox.failing = {w.addr["dsl"], w.addr["safeguarding"], w.addr["duty_manager"], DESK}
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, w), deps=deps)
    await at(clock, dispatcher, PUSH_AT)
    # staged in one pass on a pinned clock: they tie on created_at, so put them in line order
    line = ("dsl", "safeguarding", "duty_manager", "service_desk")
    handed = sorted(await mail_rows(notifier_engine, school_urn=w.urn),
                    key=lambda m: line.index(m.to_addrs["role"]))
    assert [(m.kind, m.to_addrs["role"], m.status, m.handed_on_at) for m in handed] == [
        ("notice", "dsl", "dead", PUSH_AT),
        ("delivery_failed", "safeguarding", "dead", PUSH_AT),
        ("delivery_failed", "duty_manager", "dead", PUSH_AT),
        ("delivery_failed", "service_desk", "dead", None)]  # nobody is left after the desk
    [row] = await rows_for(notifier_engine, incident_id)
    assert (row.la_since, row.duty_at, row.deadline_at) == (PUSH_AT, monday(7, 30),
                                                            monday(7, 30))
    assert (await api.get(f"/v1/notifications/{row.id}",
                          headers=bearer(w.officer()))).status_code == 200
    assert await escalations_audited(notifier_engine, row.id) == [
        f"delivery failed for good: handed on to {role}"
        for role in ("safeguarding", "duty_manager", "service_desk")]
    await at(clock, dispatcher, PUSH_AT + timedelta(minutes=5))
    assert len(await mail_rows(notifier_engine, school_urn=w.urn)) == 4  # each hand-on once


async def test_a_dead_delivery_reaches_the_la_at_once_and_its_duty_manager_next(
    notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    w = await world(notifier_engine)
    mailbox.failing = {w.addr["dsl"]}
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, w), deps=deps)
    await at(clock, dispatcher, PUSH_AT)
    [passed] = mailbox.to(w.addr["safeguarding"])
    assert "could not be delivered" in passed and "Zara" not in passed
    [item] = await items_of(notifier_engine, w, clock.now)
    assert (item.owner, item.next_at, item.next_role) == ("safeguarding", monday(7, 30),
                                                          "duty_manager")
    await at(clock, dispatcher, monday(7, 30))
    assert len(mailbox.to(w.addr["duty_manager"])) == 1


async def test_a_dead_mail_about_items_closed_since_is_handed_to_nobody(
    notifier_engine, deps, clock, dispatcher, mailbox, api
) -> None:
    w = await world(notifier_engine)
    mailbox.failing = {w.addr["dsl"]}
    dispatcher.max_attempts = 2
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, w), deps=deps)
    await at(clock, dispatcher, PUSH_AT)  # the first attempt fails: retried later
    [row] = await rows_for(notifier_engine, incident_id)
    ack = await api.post(f"/v1/notifications/{row.id}/acknowledge", json={},
                         headers=bearer(person("dsl", schools=[w.urn])))
    assert ack.status_code == 200
    await at(clock, dispatcher, PUSH_AT + timedelta(minutes=1))
    [dead] = await mail_rows(notifier_engine, school_urn=w.urn)
    assert (dead.status, dead.handed_on_at) == ("dead", None)
    assert mailbox.to(w.addr["safeguarding"]) == []


# --- open items, the registry copy and the API ------------------------------------------------


async def test_open_items_are_the_las_for_its_officers_all_for_admins_and_none_for_dsls(
    notifier_engine, deps, clock, dispatcher, api
) -> None:
    w = await world(notifier_engine)
    matched_id, review_id = uuid.uuid4(), uuid.uuid4()
    await on_child_matched(matched(matched_id, w), deps=deps)
    await on_child_needs_review(needs_review(review_id, w.la, deadline_at=monday(8, 45)),
                                deps=deps)
    await at(clock, dispatcher, PUSH_AT)
    got = await api.get("/v1/open-items", headers=bearer(w.officer()))
    assert got.status_code == 200
    items = got.json()["items"]
    assert [(i["kind"], i["owner"], i["next_at"], i["next_role"]) for i in items] == [
        ("review", "review", monday(8, 15).isoformat(), "duty_manager"),
        ("notification", "dsl", monday(9, 45).isoformat(), "deputy_dsl")]
    assert set(items[0]) == {"kind", "id", "la_code", "school_urn", "owner", "deadline_at",
                             "next_at", "next_role", "next_addresses", "child_ids",
                             "past_deadline"}
    assert "Zara" not in got.text and "Okafor" not in got.text
    admin = (await api.get("/v1/open-items", headers=bearer(person("admin")))).json()["items"]
    assert {i["id"] for i in items} <= {i["id"] for i in admin}
    other = bearer(person("la_officer", las=[next_la()]))
    assert (await api.get("/v1/open-items", headers=other)).json()["items"] == []
    as_dsl = bearer(person("dsl", schools=[w.urn]))
    assert (await api.get("/v1/open-items", headers=as_dsl)).status_code == 403


async def test_every_child_is_acknowledged_or_on_an_open_item_with_a_future_next_step(
    notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    """A small "no child left" world: every kind of item, driven through the morning."""
    w = await world(notifier_engine, school_roles=("dsl",), la_roles=("safeguarding",))
    closed = await world(notifier_engine, status="closed")
    mailbox.failing = {w.addr["dsl"]}
    incidents = [uuid.uuid4() for _ in range(4)]
    await on_child_matched(matched(incidents[0], w), deps=deps)
    await on_child_matched(matched(incidents[1], closed), deps=deps)
    await on_child_unmatched(unmatched(incidents[2], w.la), deps=deps)
    await on_child_needs_review(needs_review(incidents[3], w.la), deps=deps)
    children = {uuid.uuid5(i, "0") for i in incidents}
    for hour in range(6, 15):
        await at(clock, dispatcher, monday(hour, 7))
        async with notifier_engine.connect() as conn:
            items = await open_items(conn, now=clock.now, la_codes=[w.la, closed.la],
                                     service_desk=DESK)
        assert children <= {c for i in items for c in i.child_ids}
        assert all(i.next_at > clock.now and i.next_addresses for i in items)


async def test_the_copy_keeps_the_las_safety_net_settings(notifier_engine) -> None:
    la = next_la()
    await notifier_knows_la_as(notifier_engine, la, contacts=[], escalation_before_minutes=45,
                               attendance_prompt_at=time(9, 30), attendance_la_at=time(11))
    async with notifier_engine.connect() as conn:
        row = (await conn.execute(select(local_authorities).where(
            local_authorities.c.la_code == la))).one()
    assert (row.escalation_before_minutes, row.attendance_prompt_at, row.attendance_la_at) == (
        45, time(9, 30), time(11))


async def test_a_child_joining_an_acknowledged_notification_opens_it_again(
    notifier_engine, deps, clock, dispatcher, mailbox, api
) -> None:
    w = await world(notifier_engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, w), deps=deps)
    await at(clock, dispatcher, PUSH_AT)
    [row] = await rows_for(notifier_engine, incident_id)
    await api.post(f"/v1/notifications/{row.id}/acknowledge", json={},
                   headers=bearer(person("dsl", schools=[w.urn])))
    clock.now = monday(8)
    await on_child_matched(matched(incident_id, w, "Tomi", index=1, decided_by="review",
                                   at_=monday(8)), deps=deps)
    [row] = await rows_for(notifier_engine, incident_id)
    assert (row.state, row.acknowledged_at, row.push_at) == ("scheduled", None, monday(8))
    await at(clock, dispatcher, monday(8))
    assert len(mailbox.to(w.addr["dsl"])) == 2
    async with notifier_engine.connect() as conn:
        kids = (await conn.execute(select(notification_children.c.child_id).where(
            notification_children.c.notification_id == row.id))).scalars().all()
    [item] = await items_of(notifier_engine, w, clock.now)
    assert set(item.child_ids) == set(kids) and len(kids) == 2


async def test_a_dead_review_alert_is_handed_to_the_duty_manager(
    notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    w = await world(notifier_engine)
    mailbox.failing = {w.addr["review"]}
    await on_child_needs_review(needs_review(uuid.uuid4(), w.la), deps=deps)
    await at(clock, dispatcher, MATCHED_AT)
    [passed] = mailbox.to(w.addr["duty_manager"])
    assert "could not be delivered" in passed
    [dead] = await mail_rows(notifier_engine, la_code=w.la, kind="review_waiting")
    [handed] = await mail_rows(notifier_engine, la_code=w.la, kind="delivery_failed")
    assert (dead.kind, dead.status, dead.handed_on_at) == ("review_waiting", "dead", MATCHED_AT)
    assert (handed.kind, handed.to_addrs["role"]) == ("delivery_failed", "duty_manager")


async def test_gauges_count_open_items_past_their_deadline_and_mail_handed_to_nobody(
    settings, notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    from services.common.context import AppContext
    from services.common.metrics import refresh_gauges
    from services.notifier.metrics import observe_notifications

    ctx = AppContext(settings=settings, engine=notifier_engine, registry=CollectorRegistry(),
                     clock=clock)
    observe_notifications(ctx)

    async def sample(name: str, **labels: str) -> float:
        clock.now = monday(9, 30)
        await refresh_gauges(ctx)
        return ctx.registry.get_sample_value(name, labels) or 0.0

    late = {"kind": "notification", "when": "past_deadline"}
    await at(clock, dispatcher, PUSH_AT)  # the shared database's other rows: moved first
    before = (await sample("daybreak_open_items", **late),
              await sample("daybreak_dead_emails_not_handed_on"))
    w = await world(notifier_engine, la_roles=())
    mailbox.failing = {DESK}
    await on_child_unmatched(unmatched(uuid.uuid4(), w.la), deps=deps)
    await at(clock, dispatcher, PUSH_AT)  # to the desk (the LA names nobody), which fails
    after = (await sample("daybreak_open_items", **late),
             await sample("daybreak_dead_emails_not_handed_on"))
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)  # deadline 09:00, not met


async def test_a_review_after_a_withdrawal_is_silent_and_one_queued_again_is_chased_anew(
    notifier_engine, deps, clock, dispatcher, mailbox
) -> None:
    w = await world(notifier_engine)
    gone, again = uuid.uuid4(), uuid.uuid4()
    await on_incident_withdrawn(wrap(IncidentWithdrawn(
        incident_id=gone, force_code="WMP", withdrawn_at=MATCHED_AT, reason="error")),
        deps=deps)
    await on_child_needs_review(needs_review(gone, w.la), deps=deps)
    await on_child_needs_review(needs_review(again, w.la), deps=deps)
    await on_child_unmatched(unmatched(again, w.la, decided_by="review",
                                       at_=MATCHED_AT + timedelta(minutes=5)), deps=deps)
    await at(clock, dispatcher, MATCHED_AT + timedelta(minutes=10))
    assert mailbox.to(w.addr["review"]) == []  # one withdrawn, one resolved before its alert
    # the incident corrected: the child is queued for review again, after its resolution
    await on_child_needs_review(needs_review(again, w.la, queued_at=monday(7)), deps=deps)
    await at(clock, dispatcher, monday(7))
    assert len(mailbox.to(w.addr["review"])) == 1
    reviews = [i for i in await items_of(notifier_engine, w, clock.now) if i.kind == "review"]
    assert [i.child_ids for i in reviews] == [[uuid.uuid5(again, "0")]]
