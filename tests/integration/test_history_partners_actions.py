"""Structured actions, the child's history and the LA's partner directory against the real
database: acknowledging with actions and following up (and the 409s and 422s), the events
staged content-free, the history's 12-month window and school scoping, the LA's count across
its schools, each history an audited disclosure, and the directory's PUT/GET and its scoping."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.matching import ChildUnmatched
from services.common.app import create_app
from services.common.models import outbox
from services.common.pseudonym import child_key_v1
from services.common.settings import Settings
from services.notifier.api import router as notifications_router
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps, on_child_matched, on_child_unmatched
from services.notifier.models import notification_children, notifications
from services.notifier.partners import router as partners_router
from tests.support.api import running
from tests.support.clock import Clock
from tests.support.directory import notifier_knows_school
from tests.support.ids import next_urn
from tests.support.notifier import MATCHED_AT, School, add_school, child, facts, matched, rows_for
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)
BORN = date(2015, 1, 9)  # tests/support/notifier.child's birth date


@pytest.fixture
def clock() -> Clock:
    """Sunday evening, when the first child is matched (the rules' time; tokens use the real)."""
    return Clock(MATCHED_AT)


@pytest.fixture
async def api(settings: Settings, notifier_engine: AsyncEngine, clock: Clock,
              notifier_deps: NotifierDeps) -> AsyncIterator[httpx.AsyncClient]:
    """The notifications and partner-directory routes as the notifier serves them."""
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings, engine=notifier_engine, registry=CollectorRegistry(), clock=clock,
        deps=notifier_deps))
    app.include_router(notifications_router)
    app.include_router(partners_router)
    async with running(app) as client:
        yield client


async def notify(deps: NotifierDeps, clock: Clock, school: School, given: str, at: datetime
                 ) -> Any:
    """A notification to the school about the child, created at `at`; its row."""
    clock.now, incident_id = at, uuid.uuid4()
    await on_child_matched(matched(incident_id, school, given, matched_at=at), deps=deps)
    [row] = await rows_for(deps.engine, incident_id)
    return row


def dsl_of(school: School) -> dict[str, str]:
    return bearer(person("dsl", schools=[school.urn]))


async def staged(engine: AsyncEngine, settings: Settings, topic: str) -> list[tuple[str, Any]]:
    """The outbox's (key, event) rows on the topic, oldest first."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.key, outbox.c.value).where(
            outbox.c.source == settings.topic("notifier"),
            outbox.c.topic == settings.topic(topic)).order_by(outbox.c.id))).all()
    return [(r.key, json.loads(r.value)) for r in rows]


async def test_acknowledged_with_actions_then_a_follow_up_each_staged_without_notes(
    notifier_engine: AsyncEngine, notifier_deps: NotifierDeps, clock: Clock,
    api: httpx.AsyncClient, settings: Settings,
) -> None:
    school = await add_school(notifier_engine)
    row = await notify(notifier_deps, clock, school, "Zara", MATCHED_AT)
    clock.now = MATCHED_AT + DAY  # Monday 23 November
    url, headers = f"/v1/notifications/{row.id}", dsl_of(school)
    early = await api.post(f"{url}/actions", headers=headers,
                           json={"type": "housing", "on": "2026-11-23"})
    assert early.status_code == 409  # a follow-up only after the acknowledgement
    for wrong in ("2026-11-24", "2026-11-21"):  # tomorrow; before it was received
        refused = await api.post(f"{url}/acknowledge", headers=headers, json={
            "actions": [{"type": "none_needed", "on": "2026-11-22"},
                        {"type": "camhs", "on": wrong, "note": "Zara Okafor was upset"}]})
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json()["errors"]] == ["actions[1].on"]
        assert "Zara" not in refused.text and wrong not in refused.text
    assert (await api.post(f"{url}/acknowledge", headers=headers,
                           json={"actions": []})).status_code == 422  # one or more
    ack = await api.post(f"{url}/acknowledge", headers=headers, json={
        "action_taken": "Spoke to Zara", "actions": [
            {"type": "early_help", "on": "2026-11-23", "note": "CAF opened with Zara's mum"},
            {"type": "support_in_school", "on": "2026-11-22"}]})
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    follow = await api.post(f"{url}/actions", headers=headers, json={
        "type": "camhs", "on": "2026-11-23", "note": "Zara referred to CAMHS"})
    assert follow.status_code == 201
    assert follow.json()["action"] == {"type": "camhs", "on": "2026-11-23",
                                       "note": "Zara referred to CAMHS"}
    other = await add_school(notifier_engine)
    assert (await api.post(f"{url}/actions", headers=dsl_of(other), json={
        "type": "camhs", "on": "2026-11-23"})).status_code == 404
    details = (await api.get(url, headers=headers)).json()
    assert [(a["type"], a["on"], a["note"], a["follow_up"]) for a in details["actions"]] == [
        ("early_help", "2026-11-23", "CAF opened with Zara's mum", False),
        ("support_in_school", "2026-11-22", None, False),
        ("camhs", "2026-11-23", "Zara referred to CAMHS", True)]
    events = [(k, e) for k, e in await staged(notifier_engine, settings, "notifications.v1")
              if e["payload"].get("notification_id") == str(row.id)
              and e["type"] != "NotificationViewed"]  # the details read above: its first view
    assert [e["type"] for _, e in events] == ["NotificationAcknowledged",
                                              "NotificationActionAdded"]
    assert {k for k, _ in events} == {str(row.incident_id)}
    acked, added = events[0][1]["payload"], events[1][1]["payload"]
    assert acked["actions"] == [{"type": "early_help", "on": "2026-11-23"},
                                {"type": "support_in_school", "on": "2026-11-22"}]
    assert (acked["acknowledger_role"], acked["school_urn"], acked["force_code"]) == (
        "dsl", school.urn, "WMP")
    assert added["action"] == {"type": "camhs", "on": "2026-11-23"}
    for _, event in events:  # content-free: no note, no name, no birth date
        text = json.dumps(event)
        assert "Zara" not in text and "Okafor" not in text and BORN.isoformat() not in text
    again = await api.post(f"{url}/acknowledge", headers=headers, json={})
    assert again.status_code == 409


async def test_the_history_is_the_childs_earlier_notifications_at_this_school_in_12_months(
    notifier_engine: AsyncEngine, notifier_deps: NotifierDeps, clock: Clock,
    api: httpx.AsyncClient, settings: Settings,
) -> None:
    school = await add_school(notifier_engine)
    elsewhere = School(next_urn(), school.la, "d@x.test", "e@x.test", school.la_contact)
    await notifier_knows_school(notifier_engine, elsewhere.urn, school.la, contacts=[
        {"role": "dsl", "name": "D", "email": elsewhere.dsl}])
    now = MATCHED_AT + 400 * DAY
    old = await notify(notifier_deps, clock, school, "Zara", now - 370 * DAY)  # 12+ months
    earlier = await notify(notifier_deps, clock, school, "Zara", now - 90 * DAY)
    taken_back = await notify(notifier_deps, clock, school, "Zara", now - 60 * DAY)
    at_another = await notify(notifier_deps, clock, elsewhere, "Zara", now - 30 * DAY)
    sibling = await notify(notifier_deps, clock, school, "Tomi", now - 20 * DAY)
    clock.now = now - 89 * DAY
    await api.post(f"/v1/notifications/{earlier.id}/acknowledge", headers=dsl_of(school),
                   json={"actions": [{"type": "early_help", "on": clock.now.date().isoformat(),
                                      "note": "not for the history"}]})
    async with notifier_engine.begin() as conn:
        await conn.execute(update(notifications).where(notifications.c.id == taken_back.id)
                           .values(state="retracted"))
        # stored before child_key v2: still the same child
        await conn.execute(update(notification_children).where(
            notification_children.c.notification_id == earlier.id).values(
            child_key=child_key_v1(notifier_deps.child_key_secret, given_name="Zara",
                                   family_name="Okafor", date_of_birth=BORN)))
    current = await notify(notifier_deps, clock, school, "Zara", now)
    details = (await api.get(f"/v1/notifications/{current.id}", headers=dsl_of(school))).json()
    [history] = details["history"]
    assert [e["notification_id"] for e in history["earlier"]] == [str(earlier.id)]
    [entry] = history["earlier"]
    assert entry["incident_type"] == "domestic_abuse" and entry["acknowledged_at"]
    assert entry["actions"] == [{"type": "early_help",
                                 "on": (now - 89 * DAY).date().isoformat()}]
    assert "not for the history" not in json.dumps(details["history"])
    assert str(old.id) not in json.dumps(details) and str(sibling.id) not in json.dumps(details)
    # the other school's DSL sees only its own school's history
    theirs = (await api.get(f"/v1/notifications/{at_another.id}",
                            headers=dsl_of(elsewhere))).json()
    assert theirs["history"] == [{"child_id": theirs["history"][0]["child_id"], "earlier": []}]
    reads = [e["payload"] for _, e in await staged(notifier_engine, settings, "disclosures.v1")
             if e["payload"]["action"] == "history.read"
             and e["payload"]["notification_id"] == str(current.id)]
    [key] = {r["child_key"] for r in reads}
    assert len(reads) == 1 and key.startswith("v2:") and reads[0]["channel"] == "api"


async def test_an_la_officer_sees_the_childs_count_across_the_las_schools(
    notifier_engine: AsyncEngine, notifier_deps: NotifierDeps, clock: Clock,
    api: httpx.AsyncClient, settings: Settings,
) -> None:
    school = await add_school(notifier_engine)
    second = School(next_urn(), school.la, "d@y.test", "e@y.test", school.la_contact)
    await notifier_knows_school(notifier_engine, second.urn, school.la, contacts=[
        {"role": "dsl", "name": "D", "email": second.dsl}])
    now = MATCHED_AT + 30 * DAY
    await notify(notifier_deps, clock, school, "Ada", now - 400 * DAY)  # too long ago
    await notify(notifier_deps, clock, school, "Ada", now - 200 * DAY)
    await notify(notifier_deps, clock, school, "Ada", now - 100 * DAY)
    await notify(notifier_deps, clock, second, "Ada", now - 10 * DAY)
    other_la = await add_school(notifier_engine)
    await notify(notifier_deps, clock, other_la, "Ada", now - 5 * DAY)  # another LA's school
    clock.now, incident_id = now, uuid.uuid4()
    await on_child_unmatched(wrap(ChildUnmatched(
        child_id=uuid.uuid4(), child_index=0, incident=facts(incident_id), child=child("Ada"),
        la_code=school.la, reason="not_on_roll", decided_by="engine", decided_at=now)),
        deps=notifier_deps)
    [row] = await rows_for(notifier_engine, incident_id)
    officer = bearer(person("la_officer", las=[school.la]))
    details = (await api.get(f"/v1/notifications/{row.id}", headers=officer)).json()
    assert [h["la"] for h in details["history"]] == [{"notifications": 3, "schools": 2}]
    reads = [e["payload"] for _, e in await staged(notifier_engine, settings, "disclosures.v1")
             if e["payload"]["action"] == "history.read"
             and e["payload"]["notification_id"] == str(row.id)]
    assert [(r["actor_role"], r["la_code"]) for r in reads] == [("la_officer", school.la)]


DIRECTORY = [
    {"need_type": "early_help", "name": "Early Help hub", "phone": "0121 303 1234",
     "email": "early.help@la.example.org", "web": "https://la.example.org/early-help",
     "hours": "Monday to Friday, 9am to 5pm", "guidance": "Ring first, then send the form."},
    {"need_type": "domestic_abuse_services", "name": "IDVA service", "phone": "0800 123 4567"},
]


async def test_the_las_officers_keep_its_directory_and_its_schools_dsls_read_it(
    notifier_engine: AsyncEngine, api: httpx.AsyncClient,
) -> None:
    school, foreign = await add_school(notifier_engine), await add_school(notifier_engine)
    url = f"/v1/partners/{school.la}"
    officer = bearer(person("la_officer", las=[school.la]))
    put = await api.put(url, headers=officer, json={"partners": DIRECTORY})
    assert put.status_code == 200 and put.json()["partners"][1]["name"] == "IDVA service"
    for reader in (officer, dsl_of(school), bearer(person("deputy_dsl", schools=[school.urn]))):
        got = await api.get(url, headers=reader)
        assert got.status_code == 200
        assert [p["name"] for p in got.json()["partners"]] == ["Early Help hub", "IDVA service"]
        assert got.json()["partners"][0]["web"] == "https://la.example.org/early-help"
    other_officer = bearer(person("la_officer", las=[foreign.la]))
    for outsider in (dsl_of(foreign), other_officer):
        assert (await api.get(url, headers=outsider)).status_code == 404
    assert (await api.put(url, headers=other_officer, json={"partners": []})).status_code == 404
    assert (await api.put(url, headers=dsl_of(school), json={"partners": []})).status_code == 403
    bad = await api.put(url, headers=officer, json={"partners": [
        DIRECTORY[0] | {"web": "http://la.example.org", "email": "nobody", "phone": "12"},
        DIRECTORY[1] | {"need_type": "astrology"}]})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} >= {
        "partners[0].web", "partners[0].email", "partners[0].phone", "partners[1].need_type"}
    kept = (await api.get(url, headers=officer)).json()["partners"]
    assert len(kept) == 2  # a refused list changes nothing
    assert (await api.put(url, headers=officer, json={"partners": []})).status_code == 200
    assert (await api.get(url, headers=officer)).json()["partners"] == []
