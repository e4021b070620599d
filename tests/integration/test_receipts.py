"""Receipts for police: ingest's projection of `notifications.v1`, the GETs, the signed webhook.

The notifier's outbox is played by the test: it puts the schema's events on the topic (or
hands them to the projection directly where order and repeats must be exact).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from schemas import topics
from schemas.envelope import Envelope, wrap
from schemas.notifications import (
    Action,
    ChildOutcome,
    LifecycleEvent,
    NotificationAcknowledged,
    NotificationActionAdded,
    NotificationEscalated,
    NotificationPushed,
    NotificationRetracted,
    NotificationScheduled,
    NotificationUpdated,
    NotificationViewed,
)
from services.common.db import UnitOfWork, service_engine
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import Settings
from services.ingest.main import build_app
from services.ingest.receipts import ReceiptDeps, on_lifecycle_event, on_lifecycle_events
from services.ingest.receipts_models import receipt_deliveries, receipt_forces
from services.ingest.settings import IngestSettings
from tests.support.api import running
from tests.support.clock import Clock
from tests.support.db import executemanys, statements
from tests.support.ids import next_force, next_urn
from tests.support.incidents import incident_body, register_force
from tests.support.tokens import bearer, police
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.integration
SECRET = "a-force-receipts-secret-32-chars-long"
BACKOFF_S = 30


class Force:
    """A force of its own for one test (listings are per force), its app and its clock."""

    def __init__(self, api: httpx.AsyncClient, app: Any, settings: Settings, clock: Clock,
                 code: str) -> None:
        self.api, self.app, self.settings, self.clock, self.code = api, app, settings, clock, code
        self.headers = bearer(police(code))
        self.deps = ReceiptDeps(engine=app.state.ctx.engine, clock=clock)

    async def report(self, children: int = 1) -> uuid.UUID:
        """An incident posted through the API; its id."""
        body = incident_body(self.code)
        body["children"] = body["children"] * children
        resp = await self.api.post("/v1/incidents", json=body, headers=self.headers)
        assert resp.status_code == 202, resp.text
        return uuid.UUID(resp.json()["incident_id"])

    async def receipt(self, incident_id: uuid.UUID) -> dict[str, Any]:
        resp = await self.api.get(f"/v1/incidents/{incident_id}", headers=self.headers)
        assert resp.status_code == 200, resp.text
        receipt: dict[str, Any] = resp.json()
        return receipt

    async def apply(self, *events: LifecycleEvent | Envelope[Any]) -> None:
        """Each event through the projection, as the consumer hands it over."""
        for event in events:
            envelope = event if isinstance(event, Envelope) else wrap(event, occurred_at=event.at)
            await on_lifecycle_event(envelope, deps=self.deps)

    async def listing(self, **params: Any) -> httpx.Response:
        return await self.api.get("/v1/incidents", params=params, headers=self.headers)


@pytest.fixture
async def force(settings: Settings, clock: Clock) -> AsyncIterator[Force]:
    fast = IngestSettings(**settings.model_dump(), receipt_delivery_interval_s=0.05,
                          receipt_delivery_backoff_s=BACKOFF_S, receipt_delivery_max_attempts=3)
    app = build_app(fast)
    app.state.ctx.clock = clock
    code = next_force("RC")
    await register_force(settings, code)
    async with running(app) as api:
        yield Force(api, app, settings, clock, code)


def lifecycle(force: Force, incident_id: uuid.UUID, notification_id: uuid.UUID, urn: str
              ) -> Callable[..., Any]:
    """A maker of one notification's events at the force's clock, `after` seconds on."""

    def make(cls: type[Any], after: float = 0, **fields: Any) -> Any:
        return cls(incident_id=incident_id, notification_id=notification_id,
                   force_code=force.code, school_urn=urn, la_code="L1",
                   at=force.clock.now + timedelta(seconds=after), **fields)

    return make


def moment(force: Force, after: float) -> str:
    """The force's clock `after` seconds on, as a receipt shows it."""
    return (force.clock.now + timedelta(seconds=after)).isoformat()


def outcome(force: Force, incident_id: uuid.UUID, after: float = 0, **fields: Any
            ) -> ChildOutcome:
    return ChildOutcome(incident_id=incident_id, at=force.clock.now + timedelta(seconds=after),
                        **({"child_index": 0, "outcome": "matched"} | fields))


def scheduled(make: Callable[..., Any], after: float = 0, **fields: Any) -> Any:
    return make(NotificationScheduled, after, **({
        "recipient_role": "school", "child_indexes": [0],
        "push_at": make(NotificationPushed, 3600, channel="email").at} | fields))


async def until(check: Callable[[], Any], timeout_s: float = 20) -> Any:
    """Poll an async check until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await check()
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_a_receipt_is_built_from_the_events_on_the_topic(force: Force) -> None:
    incident_id, nid, urn = await force.report(), uuid.uuid4(), next_urn()
    make = lifecycle(force, incident_id, nid, urn)
    events = [outcome(force, incident_id, school_urns=[urn], la_code="L1"), scheduled(make),
              make(NotificationPushed, 60, channel="email"),
              make(NotificationViewed, 120, viewer_role="dsl"),
              make(NotificationAcknowledged, 180, acknowledger_role="dsl",
                   actions=[Action(type="school_nurse", on=date(2026, 11, 23))])]
    topic = force.settings.topic(topics.NOTIFICATIONS)
    await ensure_topics(force.settings.kafka(), [topic], layout=force.settings.topic_layout())
    producer = make_producer(force.settings.kafka())
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, wrap(event, occurred_at=event.at).to_bytes(),
                                         key=str(incident_id).encode())
    finally:
        await producer.stop()

    async def acknowledged() -> dict[str, Any] | None:
        receipt = await force.receipt(incident_id)
        done = receipt["notifications"] and receipt["notifications"][0]["acknowledged_at"]
        return receipt if done else None

    receipt = await until(acknowledged)
    assert receipt, "the consumer never projected the events"
    assert receipt["version"] == 1 and receipt["status"] == "accepted"
    assert receipt["children"] == [{"child_index": 0, "outcome": "matched", "withdrawn_at": None,
                                    "school_urns": [urn], "la_code": "L1"}]
    [seen] = receipt["notifications"]
    assert seen["notification_id"] == str(nid) and seen["school_urn"] == urn
    assert (seen["recipient_role"], seen["child_indexes"]) == ("school", [0])
    for field, event in (("scheduled_at", events[1]), ("pushed_at", events[2]),
                         ("first_viewed_at", events[3]), ("acknowledged_at", events[4])):
        assert seen[field] == event.at.isoformat(), field
    assert seen["push_at"] == events[1].push_at.isoformat()
    assert seen["actions"] == [{"type": "school_nurse", "on": "2026-11-23"}]
    assert (seen["escalations"], seen["retracted_at"], seen["retract_reason"]) == ([], None, None)
    assert receipt["updated_at"] >= receipt["received_at"]
    body = json.dumps(receipt)
    assert "Amelia" not in body and "Khan" not in body and "2016-03-02" not in body


async def _changes(force: Force) -> int:
    """How many changes the force's receipts have had."""
    async with force.deps.engine.connect() as conn:
        return int((await conn.execute(select(receipt_forces.c.last_seq).where(
            receipt_forces.c.force_code == force.code))).scalar() or 0)


async def test_a_repeated_event_changes_nothing(force: Force) -> None:
    incident_id, nid = await force.report(), uuid.uuid4()
    make = lifecycle(force, incident_id, nid, next_urn())
    escalated = wrap(make(NotificationEscalated, 10, stage="deputy"))
    await force.apply(scheduled(make), escalated, escalated)
    assert await _changes(force) == 3  # the report itself, then the two events
    first_push = make(NotificationPushed, 5, channel="email")
    await force.apply(first_push)
    assert await _changes(force) == 4
    # the same fact again under a new event id (an e-mail sent twice) is no change either
    await force.apply(make(NotificationPushed, 50, channel="email"))
    assert await _changes(force) == 4
    [receipt] = (await force.listing()).json()["items"]
    assert [e["stage"] for e in receipt["notifications"][0]["escalations"]] == ["deputy"]
    assert receipt["notifications"][0]["pushed_at"] == first_push.at.isoformat()


async def test_events_out_of_order_are_all_kept(force: Force) -> None:
    incident_id, nid, urn = await force.report(children=2), uuid.uuid4(), next_urn()
    make = lifecycle(force, incident_id, nid, urn)
    await force.apply(
        make(NotificationAcknowledged, 300, acknowledger_role="dsl",
             actions=[Action(type="early_help", on=date(2026, 11, 24))]),
        make(NotificationViewed, 200, viewer_role="dsl"),
        make(NotificationActionAdded, 400, action=Action(type="camhs", on=date(2026, 11, 25))),
        make(NotificationUpdated, 250, child_indexes=[0, 1]),
        make(NotificationPushed, 100, channel="webhook"),
        scheduled(make),
        outcome(force, incident_id, 500, child_index=1, school_urns=[urn], la_code="L1"),
        outcome(force, incident_id, 50, child_index=1, outcome="review", la_code="L1",
                decided_by="engine"),
    )
    [seen] = (await force.receipt(incident_id))["notifications"]
    assert seen["scheduled_at"] == moment(force, 0)
    assert seen["pushed_at"] and seen["first_viewed_at"] and seen["acknowledged_at"]
    assert seen["child_indexes"] == [0, 1]  # the correction, newer than the schedule
    assert [a["type"] for a in seen["actions"]] == ["early_help", "camhs"]
    children = (await force.receipt(incident_id))["children"]
    assert [c["outcome"] for c in children] == [None, "matched"]  # the review was resolved


async def test_retractions_of_one_child_and_of_the_whole_notification(force: Force) -> None:
    incident_id, urn = await force.report(children=2), next_urn()
    one, whole = uuid.uuid4(), uuid.uuid4()
    first, second = lifecycle(force, incident_id, one, urn), lifecycle(force, incident_id,
                                                                        whole, next_urn())
    await force.apply(
        scheduled(first, child_indexes=[0, 1]),
        first(NotificationRetracted, 30, reason="child_withdrawn", child_indexes=[1]),
        second(NotificationRetracted, 20, reason="incident_withdrawn"),
        scheduled(second, child_indexes=[0]),
    )
    views = {n["notification_id"]: n for n in (await force.receipt(incident_id))["notifications"]}
    assert views[str(one)]["child_indexes"] == [0]
    assert views[str(one)]["retracted_child_indexes"] == [1]
    assert views[str(one)]["retracted_at"] is None
    assert views[str(whole)]["retract_reason"] == "incident_withdrawn"
    assert views[str(whole)]["retracted_at"] == moment(force, 20)


async def test_another_forces_incident_is_404_and_not_listed(force: Force) -> None:
    incident_id = await force.report()
    await force.apply(outcome(force, incident_id))
    other = next_force("RO")
    await register_force(force.settings, other)
    theirs = bearer(police(other))
    resp = await force.api.get(f"/v1/incidents/{incident_id}", headers=theirs)
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    listed = await force.api.get("/v1/incidents", headers=theirs)
    assert listed.status_code == 200 and str(incident_id) not in listed.text


async def test_pages_follow_the_changes_oldest_first(force: Force) -> None:
    ids = [await force.report() for _ in range(5)]
    for incident_id in ids:
        await force.apply(outcome(force, incident_id, outcome="unmatched", la_code="L1"))
    # the first incident changes again: it moves to the end
    await force.apply(outcome(force, ids[0], 10, outcome="matched", school_urns=[next_urn()]))
    seen, pages, cursor = [], 0, None
    while True:
        resp = await force.listing(limit=2, **({"cursor": cursor} if cursor else {}))
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= 2
        seen += [item["incident_id"] for item in page["items"]]
        pages, cursor = pages + 1, page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(i) for i in (*ids[1:], ids[0])]


async def test_updated_since_keeps_only_later_changes(force: Force) -> None:
    early, late = await force.report(), await force.report()
    await force.apply(outcome(force, early))
    force.clock.now += timedelta(minutes=10)
    since = force.clock.now
    await force.apply(outcome(force, late))
    for value in (since.isoformat(), since.isoformat().replace("+00:00", "Z")):
        resp = await force.listing(updated_since=value)
        assert resp.status_code == 200, resp.text
        assert [i["incident_id"] for i in resp.json()["items"]] == [str(late)]
        assert resp.json()["next_cursor"] is None
    everything = await force.listing(updated_since=(since - timedelta(hours=1)).isoformat())
    assert [i["incident_id"] for i in everything.json()["items"]] == [str(early), str(late)]


@pytest.mark.parametrize("params", [
    {"cursor": "not-a-cursor"}, {"cursor": "eyJhZnRlciI6IC0xfQ"}, {"updated_since": "yesterday"},
    {"updated_since": "2026-12-01T09:00:00"}, {"limit": "0"}, {"limit": "201"},
], ids=["garbage", "negative", "words", "no-offset", "limit-0", "limit-201"])
async def test_a_bad_cursor_time_or_limit_is_422(force: Force, params: dict[str, str]) -> None:
    resp = await force.listing(**params)
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_a_force_registers_shows_and_removes_its_webhook(force: Force) -> None:
    url = f"/v1/forces/{force.code}/receipts-webhook"
    body = {"url": "https://police.example/receipts", "secret": SECRET}
    none = await force.api.get(url, headers=force.headers)
    assert none.status_code == 200 and none.json()["url"] is None
    assert (await force.api.put(url, json=body, headers=force.headers)).status_code == 201
    again = await force.api.put(url, json=body | {"url": "https://police.example/v2"},
                                headers=force.headers)
    assert again.status_code == 200
    shown = await force.api.get(url, headers=force.headers)
    assert shown.json()["url"] == "https://police.example/v2" and SECRET not in shown.text
    for bad in ({"url": "http://police.example/x", "secret": SECRET},
                {"url": "https://police.example/x", "secret": "short"},
                {"url": "https://police.example/x"}):
        resp = await force.api.put(url, json=bad, headers=force.headers)
        assert resp.status_code == 422 and SECRET not in resp.text
    other = next_force("RO")
    foreign = await force.api.put(f"/v1/forces/{other}/receipts-webhook", json=body,
                                  headers=force.headers)
    assert foreign.status_code == 404
    assert (await force.api.delete(url, headers=force.headers)).status_code == 204
    assert (await force.api.get(url, headers=force.headers)).json()["url"] is None


async def _hooked(force: Force, receiver: Receiver) -> None:
    receiver.secret = SECRET
    resp = await force.api.put(f"/v1/forces/{force.code}/receipts-webhook",
                               json={"url": receiver.url, "secret": SECRET},
                               headers=force.headers)
    assert resp.status_code == 201, resp.text


async def _deliveries(force: Force, incident_id: uuid.UUID) -> list[Any]:
    async with force.deps.engine.connect() as conn:
        return list((await conn.execute(select(receipt_deliveries).where(
            receipt_deliveries.c.incident_id == incident_id))).all())


async def test_each_change_is_posted_signed_to_the_forces_webhook(
    force: Force, receiver: Receiver
) -> None:
    await _hooked(force, receiver)
    incident_id, nid, urn = await force.report(), uuid.uuid4(), next_urn()
    make = lifecycle(force, incident_id, nid, urn)
    await force.apply(scheduled(make), make(NotificationPushed, 60, channel="email"))
    assert await until(lambda: _verified(receiver, 3)), "no signed delivery arrived"
    bodies = [json.loads(b) for b in receiver.verified]
    assert [b["change"] for b in bodies] == [
        "IncidentAccepted", "NotificationScheduled", "NotificationPushed"]
    last = bodies[-1]
    assert last["incident_id"] == str(incident_id)
    assert last["incident_reference"].startswith(force.code)
    assert last["at"] == moment(force, 60)
    assert last["receipt"]["notifications"][0]["pushed_at"] == last["at"]
    assert last["sequence"] > bodies[0]["sequence"]
    assert b"Amelia" not in b"".join(receiver.verified)


async def _verified(receiver: Receiver, count: int) -> bool:
    return len(receiver.verified) >= count


async def test_a_failed_delivery_is_retried_after_its_backoff(
    force: Force, receiver: Receiver
) -> None:
    await _hooked(force, receiver)
    receiver.fail_first, receiver.fail_status = 1, 500
    incident_id = await force.report()

    async def failed_once() -> bool:
        return [(r.status, r.attempts) for r in await _deliveries(force, incident_id)] == [
            ("pending", 1)]

    assert await until(failed_once), "the first attempt was not made"  # the report's own
    await asyncio.sleep(0.3)
    assert receiver.verified == []  # not before its backoff
    force.clock.now += timedelta(seconds=BACKOFF_S + 1)

    async def delivered() -> list[Any]:
        return [r for r in await _deliveries(force, incident_id) if r.status == "delivered"]

    [row] = await until(delivered) or [None]
    assert row is not None, "never retried"
    assert (row.attempts, receiver.refused, len(receiver.verified)) == (2, 1, 1)


async def test_a_delivery_is_dead_after_its_last_attempt(
    force: Force, receiver: Receiver
) -> None:
    await _hooked(force, receiver)
    receiver.fail_first = 10
    incident_id = await force.report()  # the report's own delivery

    async def dead() -> bool:
        force.clock.now += timedelta(hours=1)  # past any backoff
        return [r.status for r in await _deliveries(force, incident_id)] == ["dead"]

    assert await until(dead), "never given up"
    [row] = await _deliveries(force, incident_id)
    assert row.attempts == 3 and receiver.verified == []


async def test_a_child_who_joins_a_notification_adds_to_it(force: Force) -> None:
    incident_id, nid, urn = await force.report(children=2), uuid.uuid4(), next_urn()
    make = lifecycle(force, incident_id, nid, urn)
    joined = scheduled(make, 600, child_indexes=[1],
                       push_at=force.clock.now + timedelta(seconds=600))
    await force.apply(joined, scheduled(make), joined)  # in any order, and twice
    [seen] = (await force.receipt(incident_id))["notifications"]
    assert seen["child_indexes"] == [0, 1]
    assert seen["scheduled_at"] == moment(force, 0)
    assert seen["push_at"] == moment(force, 3600)  # the first schedule's push time stands


async def test_a_report_is_in_the_forces_changes_from_the_moment_it_is_kept(
    force: Force,
) -> None:
    incident_id = await force.report()
    [receipt] = (await force.listing()).json()["items"]
    assert receipt["incident_id"] == str(incident_id) and receipt["status"] == "accepted"
    assert receipt["children"] == [{"child_index": 0, "outcome": None, "school_urns": [],
                                    "la_code": None, "withdrawn_at": None}]
    withdrawn = await force.api.post(f"/v1/incidents/{incident_id}/withdraw",
                                     json={"reason": "sent in error"}, headers=force.headers)
    assert withdrawn.status_code == 202
    assert await _changes(force) == 2
    [receipt] = (await force.listing()).json()["items"]
    assert receipt["status"] == "withdrawn" and receipt["withdrawn_at"]


async def test_a_poll_numbers_its_changes_together_and_locks_the_counter_last(
    force: Force, receiver: Receiver
) -> None:
    """The force's counter is a hot row (every batch of new reports bumps it too): a poll of
    lifecycle events numbers all its changes in one bump at the end of its transaction, so the
    row is locked for its last statements only; the numbers, the receipt and the webhook's
    deliveries are as if the events came one by one."""
    await _hooked(force, receiver)
    first, second = await force.report(), await force.report()
    before = await _changes(force)
    make_a = lifecycle(force, first, uuid.uuid4(), next_urn())
    make_b = lifecycle(force, second, uuid.uuid4(), next_urn())
    pushed = wrap(make_a(NotificationPushed, 60, channel="email"))
    poll = [wrap(e, occurred_at=e.at) for e in (scheduled(make_a), scheduled(make_b))] + [
        pushed, pushed]  # the same event twice in one poll counts once
    with statements(force.deps.engine) as sent:
        async with UnitOfWork(force.deps.engine) as uow:
            await on_lifecycle_events(poll, deps=force.deps, uow=uow)
            await uow.commit()
    bump = [i for i, s in enumerate(sent) if "receipt_forces" in s]
    merges = [i for i, s in enumerate(sent)
              if "INSERT INTO ingest.receipt_notifications" in s]
    # two rounds: both schedules in one statement, then the first's push
    assert len(bump) == 1 and len(merges) == 2 and bump[0] > max(merges)
    assert await _changes(force) == before + 3
    assert await until(lambda: _verified(receiver, 5)), "the poll's deliveries never arrived"
    bodies = [json.loads(b) for b in receiver.verified][-3:]
    assert [(b["change"], b["incident_id"]) for b in bodies] == [
        ("NotificationScheduled", str(first)), ("NotificationScheduled", str(second)),
        ("NotificationPushed", str(first))]
    assert [b["sequence"] for b in bodies] == [before + 1, before + 2, before + 3]
    listed = {r["incident_id"]: r for r in (await force.listing()).json()["items"]}
    assert listed[str(first)]["notifications"][0]["pushed_at"] == moment(force, 60)


async def test_a_polls_statements_do_not_grow_with_its_incidents(force: Force) -> None:
    """A poll's statements grow with the most events one incident has in it, not with the
    poll: 2 incidents or 12, each scheduled, pushed and its child decided, take the same
    statements, word for word (so each is prepared once, not once per number of incidents),
    and every receipt comes out as the events say."""

    async def poll_of(count: int) -> tuple[list[str], list[uuid.UUID]]:
        ids = [await force.report() for _ in range(count)]
        poll = []
        for incident_id in ids:
            urn = next_urn()
            make = lifecycle(force, incident_id, uuid.uuid4(), urn)
            poll += [scheduled(make), outcome(force, incident_id, school_urns=[urn]),
                     make(NotificationPushed, 60, channel="email")]
        # an engine of its own: the app's delivery loop shares the app's
        engine = service_engine(force.settings, "ingest", pool_size=1)
        try:
            with statements(engine) as sent, executemanys(engine) as per_row:
                async with UnitOfWork(engine) as uow:
                    await on_lifecycle_events([wrap(e, occurred_at=e.at) for e in poll],
                                              deps=ReceiptDeps(engine, force.clock), uow=uow)
                    await uow.commit()
            # each merge runs once for its round: was an execution per event
            assert per_row == []
        finally:
            await engine.dispose()
        return sent, ids

    few, _ = await poll_of(2)
    many, ids = await poll_of(12)
    assert many == few
    for incident_id in ids:
        receipt = await force.receipt(incident_id)
        [child] = receipt["children"]
        [notification] = receipt["notifications"]
        assert child["outcome"] == "matched" and child["school_urns"] == [
            notification["school_urn"]]
        assert notification["pushed_at"] == moment(force, 60)


async def test_a_poll_reads_its_receipts_once_and_sees_each_events_change(force: Force) -> None:
    """The receipts of a poll's incidents are read once, not once a round: each merge's
    `RETURNING` keeps them current, so a later round still tells a change from a repeat. Here
    one incident's five events take five rounds; the repeated push (a new event id, a later
    time) and the older decision that arrives after the newer one change nothing."""
    incident_id, urn = await force.report(), next_urn()
    make = lifecycle(force, incident_id, uuid.uuid4(), urn)
    poll = [scheduled(make), make(NotificationPushed, 5, channel="email"),
            make(NotificationPushed, 50, channel="email"),
            outcome(force, incident_id, 20, school_urns=[urn]),
            outcome(force, incident_id, 10, outcome="review", la_code="L1",
                    decided_by="engine")]
    before = await _changes(force)
    with statements(force.deps.engine) as sent:
        async with UnitOfWork(force.deps.engine) as uow:
            await on_lifecycle_events([wrap(e, occurred_at=e.at) for e in poll],
                                      deps=force.deps, uow=uow)
            await uow.commit()
    reads = [s for s in sent if "FROM ingest.receipt_notifications" in s
             or "FROM ingest.receipt_children" in s]
    assert len(reads) == 2  # the notifications and the children, once each
    assert await _changes(force) == before + 3  # scheduled, first push, the matched child
    receipt = await force.receipt(incident_id)
    assert receipt["notifications"][0]["pushed_at"] == moment(force, 5)
    assert [c["outcome"] for c in receipt["children"]] == ["matched"]
