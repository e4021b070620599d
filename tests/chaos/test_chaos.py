"""Chaos: incidents flow while every service is killed with SIGKILL and restarted, the broker
is restarted (SIGTERM, then SIGKILL) and PostgreSQL restarts (fast shutdown, and a crash with
every backend SIGKILLed); then the morning push runs under more kills. Nothing may be lost or
doubled.

On its own stack (tests.support.stack), never the shared broker or database:

    .venv/bin/pytest tests/chaos -q                                   # CI size: 400 incidents
    DAYBREAK_CHAOS_INCIDENTS=10000 .venv/bin/pytest tests/chaos -q -s # the full run
    DAYBREAK_CHAOS_SEED=1234 ...                                      # replay a run's data
    DAYBREAK_CHAOS_KEEP=1 ...                   # keep the stack's logs (always kept on failure)

The push is made due by moving the scheduled notifications' `push_at` to the next few
seconds as the owner role (the services run on the real clock; the morning window is hours
away), so the dispatcher sends a wave of e-mails while it is killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import time
from datetime import datetime

import httpx
import pytest

from schemas import topics
from services.common.local_time import LONDON
from tests.chaos.checks import (
    Run,
    check_audit,
    check_emails,
    check_incidents,
    check_notifications,
    check_webhooks,
    query,
    snapshot,
    wait_for,
)
from tests.chaos.drivers import Monkey, Police, Readers, until_ok
from tests.chaos.scenario import LA, Scenario, build, check_with_engine
from tests.support.api import new_police_client
from tests.support.kafka import read_topic
from tests.support.stack import SERVICES, Stack
from tests.support.tokens import bearer, person
from tests.support.webhooks import HOOK_SECRET, Receiver

pytestmark = pytest.mark.chaos
INCIDENTS = int(os.environ.get("DAYBREAK_CHAOS_INCIDENTS", "400"))
PUSH_SPREAD_S = 20


async def test_nothing_lost_or_doubled_through_kills_and_restarts(
    stack: Stack, receiver: Receiver
) -> None:
    seed = int(os.environ.get("DAYBREAK_CHAOS_SEED") or secrets.randbits(32))
    print(f"\nchaos: seed {seed}, {INCIDENTS} incidents, logs in {stack.logs}")
    rng = random.Random(seed)
    scenario = build(rng, incidents=INCIDENTS, hook_url=receiver.url, hook_secret=HOOK_SECRET)
    check_with_engine(scenario, on_date=datetime.now(LONDON).date())
    settings = stack.settings()
    await register(stack, scenario)
    police = Police(stack.url("ingest"),
                    *await new_police_client(settings, "WMP", default_la=LA))
    readers = Readers(stack.url("notifier"), [
        *(bearer(person("dsl", schools={urn})) for urn in sorted(scenario.participating)),
        bearer(person("la_officer", las={LA}))])
    monkey = Monkey(stack, rng)
    stop_reading = asyncio.Event()
    reading = asyncio.create_task(readers.run(stop_reading))
    times = await load_under_chaos(stack, scenario, police, monkey)
    pushed_early = len(stack.mail.messages) > 0  # in school hours matches are pushed at once
    times["pushed"] = await push_under_chaos(stack, monkey)
    stop_reading.set()
    await reading
    await wait_for(lambda: audit_caught_up(stack), seconds=120)

    run = Run(scenario, police, readers, monkey, list(stack.mail.messages),
              list(receiver.verified), await snapshot(owner(stack)))
    await check_accepted_on_kafka(stack, police)
    check_incidents(run)
    check_notifications(run)
    repeated = check_emails(run, pushed_early=pushed_early)
    hooks_again = check_webhooks(run)
    check_audit(run, {r["id"]: r["children"] for r in run.tables["notifications"]})
    await check_audit_verifies(stack, events=len(run.tables["audit"]))
    await check_kafka(stack)
    print(summary(run, times, repeated=len(repeated), hooks_again=hooks_again))


async def load_under_chaos(stack: Stack, scenario: Scenario, police: Police,
                           monkey: Monkey) -> dict[str, float]:
    """Post every incident while the monkey kills and restarts; wait for the pipeline."""
    rounds = max(1, INCIDENTS // 2000)
    plan = [*(f"{name}:kill" for name in SERVICES), "kafka:term", "kafka:kill",
            "postgres:kill", "postgres:term"] * rounds
    monkey.rng.shuffle(plan)
    load_s = max(60.0, INCIDENTS / 25)
    started = time.monotonic()
    await asyncio.gather(police.post_all(scenario.incidents, over_s=load_s),
                         monkey.run(plan, over_s=load_s))
    loaded = time.monotonic()
    # on time-out the checks below name what is missing
    await wait_for(lambda: all_decided(stack, scenario), seconds=120 + INCIDENTS / 20)
    return {"load": loaded - started, "settle": time.monotonic() - loaded}


async def push_under_chaos(stack: Stack, monkey: Monkey) -> float:
    """Make every notification due within seconds; kill the notifier and PostgreSQL meanwhile."""
    started = time.monotonic()
    await query(owner(stack), "UPDATE notifier.notifications SET push_at = now() + random() * "
                f"make_interval(secs => {PUSH_SPREAD_S}) WHERE state = 'scheduled'")
    await monkey.run(["notifier:kill", "postgres:kill", "notifier:kill"], over_s=PUSH_SPREAD_S)
    await wait_for(lambda: all_pushed(stack), seconds=120 + INCIDENTS / 20)
    return time.monotonic() - started


def summary(run: Run, times: dict[str, float], *, repeated: int, hooks_again: int) -> str:
    """One paragraph of figures for the log."""
    chaos = ", ".join(f"{what} {end - began:.1f}s" for began, end, what in run.monkey.events)
    return (f"chaos: {len(run.police.accepted)} incidents accepted in {times['load']:.0f}s "
            f"({dict(run.police.statuses)}, {run.police.transport_errors} connection errors), "
            f"pipeline settled {times['settle']:.0f}s later; pushed in {times['pushed']:.0f}s: "
            f"{len(run.tables['notifications'])} notifications, {len(run.mail)} e-mails "
            f"({repeated} re-sent after a crash), {len(run.hooks)} webhooks ({hooks_again} "
            f"again); {len(run.readers.opened)} opened, {len(run.tables['audit'])} audit "
            f"events. Steps: {chaos}")


def owner(stack: Stack) -> str:
    """The owner role's URL on the stack's database."""
    assert stack.postgres is not None
    return stack.postgres.owner_url


async def register(stack: Stack, scenario: Scenario) -> None:
    """The LA, its schools and their rolls through the matcher's admin API."""
    admin = bearer(person("admin"))
    async with httpx.AsyncClient(base_url=stack.url("matcher"), headers=admin,
                                 timeout=60) as client:
        la = await client.put(f"/v1/local-authorities/{LA}", json={"name": "Chaos LA", "contacts": [
            {"role": "safeguarding", "name": "MASH", "email": "mash@la.test"},
            {"role": "review", "name": "Review", "email": "review@la.test"}]})
        assert la.status_code == 201, la.text
        for school in scenario.schools:
            urn, body = school["urn"], {k: v for k, v in school.items() if k != "urn"}
            put = await client.put(f"/v1/schools/{urn}", json=body)
            assert put.status_code == 201, put.text
            roll = await client.post(f"/v1/schools/{urn}/roster",
                                     content=scenario.roster_csv(urn).encode(),
                                     headers={"Content-Type": "text/csv"})
            assert roll.status_code == 200, roll.text


async def all_decided(stack: Stack, scenario: Scenario) -> bool:
    """Every child decided and every expected notification holding all its children."""
    children = sum(len(kids) for kids in scenario.children.values())
    want = sum(sum(scenario.recipients(ref).values()) for ref in scenario.children)
    got = await query(owner(stack), "SELECT (SELECT count(*) FROM matcher.match_decisions) "
                      "AS decided, (SELECT count(*) FROM notifier.notification_children) AS held")
    return bool(got[0]["decided"] >= children and got[0]["held"] >= want)


async def all_pushed(stack: Stack) -> bool:
    """Nothing scheduled, no e-mail or webhook waiting."""
    got = await query(owner(stack), "SELECT (SELECT count(*) FROM notifier.notifications "
                      "WHERE state = 'scheduled') + (SELECT count(*) FROM notifier.notifier_emails "
                      "WHERE status = 'pending') + (SELECT count(*) FROM "
                      "notifier.notifier_webhook_deliveries WHERE status = 'pending') AS waiting")
    return bool(got[0]["waiting"] == 0)


async def audit_caught_up(stack: Stack) -> bool:
    """Every staged disclosure published and in the audit log."""
    got = await query(owner(stack), "SELECT count(*) AS missing FROM (SELECT * FROM "
                      "matcher.outbox UNION ALL SELECT * FROM notifier.outbox) o WHERE o.topic "
                      "LIKE '%disclosures.v1' AND NOT EXISTS (SELECT FROM audit.audit_events a "
                      "WHERE a.id = o.event_id)")
    return bool(got[0]["missing"] == 0)


async def check_audit_verifies(stack: Stack, *, events: int) -> None:
    """`GET /v1/audit/verify`: the chain, the tree and the signed heads hold."""
    auditor = bearer(person("auditor"))
    async with httpx.AsyncClient(base_url=stack.url("audit"), timeout=60) as client:
        resp = await until_ok(lambda: client.get("/v1/audit/verify", headers=auditor))
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["ok"] is True and report["first_bad"] is None, report
    assert report["events"] == events


async def check_accepted_on_kafka(stack: Stack, police: Police) -> None:
    """Every incident answered 202/200 has its IncidentReceived committed on incidents.v1."""
    assert stack.kafka is not None
    visible = {r.key.decode() for r in await read_topic(stack.kafka.connection(), topics.INCIDENTS)
               if r.key}
    lost = sorted(ref for ref, incident_id in police.accepted.items()
                  if incident_id not in visible)
    assert not lost, (f"{len(lost)} incidents answered 202/200 have no committed "
                      f"IncidentReceived (read_committed) on incidents.v1, e.g. {lost[:3]}")


async def check_kafka(stack: Stack) -> None:
    """No record dead-lettered; each outbox event published once."""
    assert stack.kafka is not None
    for topic in topics.ALL_TOPICS:
        parked = await read_topic(stack.kafka.connection(), topics.dlq(topic))
        assert not parked, f"{len(parked)} records dead-lettered on {topics.dlq(topic)}"
    for topic in (topics.MATCHES, topics.REVIEWS, topics.DISCLOSURES):
        ids = [json.loads(r.value)["event_id"] for r in await read_topic(
            stack.kafka.connection(), topic)]
        assert ids and len(ids) == len(set(ids)), f"{topic}: {len(ids) - len(set(ids))} twice"
