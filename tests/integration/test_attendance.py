"""Attendance the morning after, against the real database: the DSL answers per child, an
absent child goes to the LA at once, and the follow-up prompts the DSL, then tells the LA."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.incidents import IncidentWithdrawn
from services.common.app import create_app
from services.common.local_time import LONDON
from services.common.models import outbox
from services.common.settings import Settings
from services.notifier.attendance import AttendanceFollowUp, attendance_times
from services.notifier.attendance import router as attendance_router
from services.notifier.content import opened_notification
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps, on_child_matched, on_incident_withdrawn
from services.notifier.models import (
    emails,
    local_authorities,
    notification_children,
    notifications,
)
from tests.support.api import running
from tests.support.clock import Clock
from tests.support.db import executemanys, statements
from tests.support.notifier import PUSH_AT, School, add_school, matched, rows_for
from tests.support.portal import csrf_of, new_dsl, sign_in
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
PROMPT_AT = PUSH_AT.replace(hour=10)  # Monday 23 November 2026, GMT: London = UTC
LA_AT = PUSH_AT.replace(hour=12)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("pushed_at", "times", "expected"), [
    (utc(2026, 11, 23, 7, 0), {}, (utc(2026, 11, 23, 10, 0), utc(2026, 11, 23, 12, 0))),
    # summer time: 10:00 and 12:00 in London are 09:00 and 11:00 UTC
    (utc(2026, 6, 8, 6, 0), {}, (utc(2026, 6, 8, 9, 0), utc(2026, 6, 8, 11, 0))),
    (utc(2026, 11, 23, 9, 59), {}, (utc(2026, 11, 23, 10, 0), utc(2026, 11, 23, 12, 0))),
    # a push at or after the prompt time: 60 minutes to answer, the LA after 180
    (utc(2026, 11, 23, 10, 0), {}, (utc(2026, 11, 23, 11, 0), utc(2026, 11, 23, 13, 0))),
    (utc(2026, 11, 23, 14, 30), {}, (utc(2026, 11, 23, 15, 30), utc(2026, 11, 23, 17, 30))),
    (utc(2026, 11, 23, 7, 0), {"prompt_at": time(9, 30), "la_at": time(11, 15)},
     (utc(2026, 11, 23, 9, 30), utc(2026, 11, 23, 11, 15))),
    # an LA time set before its prompt time never tells the LA before the DSL is asked
    (utc(2026, 11, 23, 7, 0), {"prompt_at": time(10, 0), "la_at": time(9, 0)},
     (utc(2026, 11, 23, 10, 0), utc(2026, 11, 23, 10, 0))),
], ids=["morning-push", "summer-time", "just-before-prompt", "at-prompt", "afternoon-push",
        "la-own-times", "la-time-before-prompt"])
def test_when_the_dsl_is_prompted_and_the_la_told(
    pushed_at: datetime, times: dict[str, time], expected: tuple[datetime, datetime]
) -> None:
    assert attendance_times(pushed_at, **times) == expected


@pytest.fixture
def clock() -> Clock:
    """Monday morning, when the notifications are pushed (tokens are checked against the
    real time, the rules against this one)."""
    return Clock(PUSH_AT)


@pytest.fixture
async def api(settings: Settings, notifier_engine: AsyncEngine, clock: Clock,
              notifier_deps: NotifierDeps) -> AsyncIterator[httpx.AsyncClient]:
    """The attendance route as the notifier serves it."""
    app = create_app(title="notifier", service="notifier", ctx=NotifierContext(
        settings=settings, engine=notifier_engine, registry=CollectorRegistry(), clock=clock,
        deps=notifier_deps))
    app.include_router(attendance_router)
    async with running(app) as client:
        yield client


@pytest.fixture
def follow_up(settings: Settings, notifier_engine: AsyncEngine, clock: Clock,
              notifier_deps: NotifierDeps) -> AttendanceFollowUp:
    return AttendanceFollowUp(engine=notifier_engine, deps=notifier_deps, clock=clock,
                              topic_prefix=settings.topic_prefix)


async def pushed(deps: NotifierDeps, school: School, given: list[str],
                 at: datetime = PUSH_AT) -> tuple[Any, list[uuid.UUID]]:
    """A notification about the children, sent to the school's DSL at `at` (as the
    dispatcher's push leaves it); the row and its children's ids."""
    incident_id, engine = uuid.uuid4(), deps.engine
    for index, name in enumerate(given):
        await on_child_matched(matched(incident_id, school, name, index), deps=deps)
    [row] = await rows_for(engine, incident_id)
    async with engine.begin() as conn:
        await conn.execute(update(notifications).where(notifications.c.id == row.id)
                           .values(state="sent", sent_at=at))
    return row, [uuid.uuid5(incident_id, str(i)) for i in range(len(given))]


async def settle(follow_up: AttendanceFollowUp) -> None:
    """Passes until nothing is left to do now (the session's other notifications too)."""
    while await follow_up.run_once():
        pass


async def state(engine: AsyncEngine, notification_id: uuid.UUID) -> Any:
    """The notification row, its sealed content opened."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(notifications).where(
            notifications.c.id == notification_id))).one()
        return SimpleNamespace(**opened_notification(conn, row._mapping))


async def answers(engine: AsyncEngine, notification_id: uuid.UUID) -> dict[uuid.UUID, Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(notification_children).where(
            notification_children.c.notification_id == notification_id))
        return {r.child_id: r for r in rows}


async def la_children(engine: AsyncEngine, incident_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """The children of the incident the LA was handed, with the reason."""
    rows = [r for r in await rows_for(engine, incident_id) if r.school_urn is None]
    if not rows:
        return {}
    [row] = rows
    return {c.child_id: c.unmatched_reason for c in (await answers(engine, row.id)).values()}


async def prompts(engine: AsyncEngine, school: School) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(emails).where(
            emails.c.school_urn == school.urn, emails.c.kind == "attendance_prompt"))).all())


async def disclosures(engine: AsyncEngine, settings: Settings, notification_id: uuid.UUID,
                      action: str) -> list[bytes]:
    async with engine.connect() as conn:
        staged = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == settings.topic("notifier"),
            outbox.c.topic == settings.topic("disclosures.v1")))).scalars().all()
    return [v for v in staged if str(notification_id).encode() in v
            and f'"action":"{action}"'.encode() in v.replace(b" ", b"")]


def dsl(school: School) -> dict[str, str]:
    return bearer(person("dsl", schools=[school.urn], subject=f"dsl-{school.urn}"))


async def test_the_dsl_records_each_child_and_an_absent_child_goes_to_the_la_at_once(
    notifier_engine: AsyncEngine, api: httpx.AsyncClient, clock: Clock, settings: Settings,
    notifier_deps: NotifierDeps,
) -> None:
    school = await add_school(notifier_engine)
    row, (zara, tomi) = await pushed(notifier_deps, school, ["Zara", "Tomi"])
    clock.now = PUSH_AT + timedelta(hours=1, minutes=5)
    url = f"/v1/notifications/{row.id}/attendance"
    resp = await api.post(url, headers=dsl(school), json={"children": [
        {"child_id": str(zara), "attended": True}, {"child_id": str(tomi), "attended": False}]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": str(row.id), "recorded": 2, "absent_told_to_la": 1,
                           "unanswered": 0}
    assert "Okafor" not in resp.text and "Tomi" not in resp.text  # no child data echoed
    stored = await answers(notifier_engine, row.id)
    assert (stored[zara].attended, stored[tomi].attended) == (True, False)
    assert {(c.attendance_at, c.attendance_by) for c in stored.values()} == {
        (clock.now, f"dsl-{school.urn}")}
    assert await la_children(notifier_engine, row.incident_id) == {
        tomi: "absent_after_incident"}
    [told] = await disclosures(notifier_engine, settings, row.id, "absence.report")
    assert b'"channel":"api"' in told.replace(b" ", b"")
    # the same answer again tells nobody twice; a change of mind is recorded
    again = await api.post(url, headers=dsl(school), json={"children": [
        {"child_id": str(tomi), "attended": False}, {"child_id": str(zara), "attended": False}]})
    assert again.json()["absent_told_to_la"] == 1  # Zara, now absent; Tomi was told already
    assert set(await la_children(notifier_engine, row.incident_id)) == {zara, tomi}
    assert len(await disclosures(notifier_engine, settings, row.id, "absence.report")) == 2


async def test_only_the_schools_own_staff_answer_for_its_children(
    notifier_engine: AsyncEngine, api: httpx.AsyncClient, notifier_deps: NotifierDeps,
) -> None:
    school, other = await add_school(notifier_engine), await add_school(notifier_engine)
    row, [zara] = await pushed(notifier_deps, school, ["Zara"])
    url, body = f"/v1/notifications/{row.id}/attendance", {
        "children": [{"child_id": str(zara), "attended": True}]}
    officer = bearer(person("la_officer", las=[school.la]))
    for headers in (dsl(other), officer):
        resp = await api.post(url, headers=headers, json=body)
        assert resp.status_code == 404 and "Okafor" not in resp.text
    admin = bearer(person("admin"))
    assert (await api.post(url, headers=admin, json=body)).status_code == 403
    deputy = bearer(person("deputy_dsl", schools=[school.urn]))
    assert (await api.post(url, headers=deputy, json=body)).status_code == 200
    stranger = await api.post(url, headers=dsl(school), json={
        "children": [{"child_id": str(uuid.uuid4()), "attended": False}]})
    assert stranger.status_code == 422
    assert stranger.json()["errors"] == [{"field": "children[0].child_id",
                                          "message": "not a child of this notification"}]
    twice = {"children": [body["children"][0], body["children"][0]]}
    for bad in (twice, {"children": []}, {"children": [{"child_id": str(zara)}]}):
        assert (await api.post(url, headers=dsl(school), json=bad)).status_code == 422
    await on_incident_withdrawn(wrap(IncidentWithdrawn(
        incident_id=row.incident_id, force_code="WMP", withdrawn_at=PUSH_AT,
        reason="sent in error")), deps=notifier_deps)
    assert (await api.post(url, headers=dsl(school), json=body)).status_code == 410


async def test_at_the_prompt_time_the_dsl_is_prompted_once_about_children_with_no_answer(
    notifier_engine: AsyncEngine, follow_up: AttendanceFollowUp, clock: Clock,
    api: httpx.AsyncClient, settings: Settings, notifier_deps: NotifierDeps,
) -> None:
    school, done = await add_school(notifier_engine), await add_school(notifier_engine)
    first, [zara, tomi] = await pushed(notifier_deps, school, ["Zara", "Tomi"])
    second, _ = await pushed(notifier_deps, school, ["Ola"])
    answered, [ada] = await pushed(notifier_deps, done, ["Ada"])
    await api.post(f"/v1/notifications/{first.id}/attendance", headers=dsl(school),
                   json={"children": [{"child_id": str(zara), "attended": True}]})
    await api.post(f"/v1/notifications/{answered.id}/attendance", headers=dsl(done),
                   json={"children": [{"child_id": str(ada), "attended": True}]})
    clock.now = PROMPT_AT - timedelta(seconds=1)
    await settle(follow_up)
    planned = await state(notifier_engine, first.id)
    assert (planned.attendance_prompt_at, planned.attendance_la_at) == (PROMPT_AT, LA_AT)
    assert planned.attendance_stage == 0 and not await prompts(notifier_engine, school)
    clock.now = PROMPT_AT
    await settle(follow_up)
    [prompt] = await prompts(notifier_engine, school)  # one e-mail for both notifications
    assert school.dsl in str(prompt.to_addrs) and school.deputy not in str(prompt.to_addrs)
    assert prompt.count == 2
    assert prompt.subject_name.startswith("School ")  # the school's name, no child's
    assert "Okafor" not in str(prompt._mapping)
    assert [(await state(notifier_engine, n.id)).attendance_stage
            for n in (first, second, answered)] == [1, 1, 2]
    assert not await prompts(notifier_engine, done)  # every child answered: nothing to ask
    assert len(await disclosures(notifier_engine, settings, first.id, "attendance.prompted")) == 2
    clock.now += timedelta(minutes=30)
    await settle(follow_up)
    assert len(await prompts(notifier_engine, school)) == 1  # prompted once, not every pass
    assert tomi not in await la_children(notifier_engine, first.incident_id)


async def test_at_the_la_time_children_still_without_an_answer_go_to_the_la(
    notifier_engine: AsyncEngine, follow_up: AttendanceFollowUp, clock: Clock,
    api: httpx.AsyncClient, settings: Settings, notifier_deps: NotifierDeps,
) -> None:
    school = await add_school(notifier_engine)
    row, [zara, tomi] = await pushed(notifier_deps, school, ["Zara", "Tomi"])
    quiet, [ola] = await pushed(notifier_deps, school, ["Ola"])
    clock.now = PROMPT_AT
    await settle(follow_up)
    # after the prompt, the DSL answers for Zara only, and for Ola
    clock.now = PROMPT_AT + timedelta(minutes=20)
    for notification, child in ((row, zara), (quiet, ola)):
        await api.post(f"/v1/notifications/{notification.id}/attendance", headers=dsl(school),
                       json={"children": [{"child_id": str(child), "attended": True}]})
    clock.now = LA_AT - timedelta(seconds=1)
    await settle(follow_up)
    assert await la_children(notifier_engine, row.incident_id) == {}
    clock.now = LA_AT
    await settle(follow_up)
    assert await la_children(notifier_engine, row.incident_id) == {tomi: "attendance_unknown"}
    assert await la_children(notifier_engine, quiet.incident_id) == {}
    assert [(await state(notifier_engine, n.id)).attendance_stage for n in (row, quiet)] == [2, 2]
    [told] = await disclosures(notifier_engine, settings, row.id, "attendance.unknown")
    assert b'"actor":"system:notifier"' in told.replace(b" ", b"")
    assert b'"channel":"email"' in told.replace(b" ", b"")
    # the LA's item is pushed like any other: the dispatcher e-mails its safeguarding contact
    [la_row] = [r for r in await rows_for(notifier_engine, row.incident_id) if r.school_urn is None]
    assert (la_row.state, la_row.push_at, la_row.la_code) == ("scheduled", LA_AT, school.la)
    # an answer later in the day (or on a later day) is still recorded
    clock.now = LA_AT + timedelta(days=1)
    late = await api.post(f"/v1/notifications/{row.id}/attendance", headers=dsl(school),
                          json={"children": [{"child_id": str(tomi), "attended": True}]})
    assert late.status_code == 200 and late.json()["unanswered"] == 0
    assert (await answers(notifier_engine, row.id))[tomi].attended is True


async def test_the_las_own_times_and_a_push_after_the_prompt_time(
    notifier_engine: AsyncEngine, follow_up: AttendanceFollowUp, clock: Clock,
    notifier_deps: NotifierDeps,
) -> None:
    early, late = await add_school(notifier_engine), await add_school(notifier_engine)
    async with notifier_engine.begin() as conn:
        await conn.execute(update(local_authorities).where(
            local_authorities.c.la_code == early.la).values(
            attendance_prompt_at=time(9, 30), attendance_la_at=time(11, 15)))
    morning, _ = await pushed(notifier_deps, early, ["Zara"])
    afternoon, _ = await pushed(notifier_deps, late, ["Tomi"],
                                at=PUSH_AT.replace(hour=10, minute=40))
    clock.now = PUSH_AT.replace(hour=10, minute=40)
    await settle(follow_up)
    first, second = [await state(notifier_engine, n.id) for n in (morning, afternoon)]
    assert (first.attendance_prompt_at, first.attendance_la_at) == (
        PUSH_AT.replace(hour=9, minute=30), PUSH_AT.replace(hour=11, minute=15))
    assert (second.attendance_prompt_at, second.attendance_la_at) == (
        PUSH_AT.replace(hour=11, minute=40), PUSH_AT.replace(hour=13, minute=40))
    assert (first.attendance_stage, second.attendance_stage) == (1, 0)
    assert len(await prompts(notifier_engine, early)) == 1
    assert not await prompts(notifier_engine, late)


async def test_two_follow_ups_at_once_prompt_and_hand_on_each_notification_once(
    notifier_engine: AsyncEngine, clock: Clock, notifier_deps: NotifierDeps, settings: Settings,
) -> None:
    school = await add_school(notifier_engine)
    rows = [await pushed(notifier_deps, school, [f"Zara{n}"]) for n in range(5)]
    both = [AttendanceFollowUp(engine=notifier_engine, deps=notifier_deps, clock=clock,
                               topic_prefix=settings.topic_prefix, batch_size=2)
            for _ in range(2)]
    clock.now = PROMPT_AT
    await asyncio.gather(*(settle(f) for f in both))
    assert sum(p.count for p in await prompts(notifier_engine, school)) == 5
    clock.now = LA_AT
    await asyncio.gather(*(settle(f) for f in both))
    for row, [child_id] in rows:
        assert await la_children(notifier_engine, row.incident_id) == {
            child_id: "attendance_unknown"}
        assert len(await disclosures(notifier_engine, settings, row.id,
                                     "attendance.unknown")) == 1


async def test_the_portal_records_attendance_and_the_acknowledge_form_answers_the_rest(
    notifier_engine: AsyncEngine, portal: httpx.AsyncClient, clock: Clock, settings: Settings,
    notifier_deps: NotifierDeps,
) -> None:
    clock.now = datetime.now(UTC) - timedelta(minutes=5)  # sign-in codes: the real time
    school = await add_school(notifier_engine)
    row, [zara, tomi] = await pushed(notifier_deps, school, ["Zara", "Tomi"])
    email, totp = await new_dsl(settings, school)
    await sign_in(portal, clock, email, totp)
    page = await portal.get(f"/portal/notifications/{row.id}")
    assert page.status_code == 200
    for child_id in (zara, tomi):
        assert f'name="child-{child_id}" type="radio" value="absent"' in page.text
    assert ">Did Zara Okafor attend school this morning?</legend>" in page.text
    url = f"/portal/notifications/{row.id}/attendance"
    nothing = await portal.post(url, data={"csrf": csrf_of(page)})
    odd = await portal.post(url, data={"csrf": csrf_of(page), f"child-{zara}": "maybe"})
    assert (nothing.status_code, odd.status_code) == (422, 422)
    forged = await portal.post(url, data={"csrf": "forged", f"child-{zara}": "attended"})
    assert forged.status_code == 403
    saved = await portal.post(url, data={"csrf": csrf_of(page), f"child-{zara}": "attended"})
    assert saved.status_code == 303 and saved.headers["location"] == "/portal/?attendance=1"
    assert "Attendance recorded." in (await portal.get(saved.headers["location"])).text
    again = await portal.get(f"/portal/notifications/{row.id}")
    assert f'id="child-{zara}-attended" name="child-{zara}" type="radio" value="attended" ' \
           "checked" in again.text
    # the acknowledge form's "attended: no" is for Tomi alone, who has no answer yet
    ack = await portal.post(f"/portal/notifications/{row.id}/acknowledge", data={
        "csrf": csrf_of(again), "action": "school_nurse",
        "on-school_nurse": clock.now.astimezone(LONDON).date().isoformat(), "attended": "no"})
    assert ack.status_code == 303
    stored = await answers(notifier_engine, row.id)
    assert (stored[zara].attended, stored[tomi].attended) == (True, False)
    assert await la_children(notifier_engine, row.incident_id) == {
        tomi: "absent_after_incident"}
    acked = await state(notifier_engine, row.id)
    assert acked.state == "acknowledged"
    assert acked.action_taken == "attended this morning: no"
    # once every child is answered, acknowledging asks no attendance question
    done = await portal.get(f"/portal/notifications/{row.id}")
    assert 'name="attended"' not in done.text and "Record attendance" in done.text


async def test_a_plan_pass_gives_its_notifications_their_times_in_one_update_however_many(
    notifier_engine: AsyncEngine, follow_up: AttendanceFollowUp, clock: Clock,
    notifier_deps: NotifierDeps,
) -> None:
    clock.now = PUSH_AT
    await settle(follow_up)  # what other tests left waiting is planned first

    async def a_pass(count: int) -> list[str]:
        school = await add_school(notifier_engine)
        rows = [(await pushed(notifier_deps, school, [f"Zara{n}"]))[0] for n in range(count)]
        with statements(notifier_engine) as sent, executemanys(notifier_engine) as per_row:
            assert await follow_up.plan() == count
        assert per_row == []  # one execution, where an executemany ran one a row
        for row in rows:
            planned = await state(notifier_engine, row.id)
            assert (planned.attendance_prompt_at, planned.attendance_la_at) == (PROMPT_AT, LA_AT)
        return [s for s in sent if s.startswith("UPDATE notifier.notifications")]

    assert len(await a_pass(6)) == len(await a_pass(1)) == 1
