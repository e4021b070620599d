"""The state of a chaos run read back as the owner role, and what must hold of it."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from tests.chaos.drivers import Monkey, Police, Readers
from tests.chaos.scenario import Scenario
from tests.support.stack import Mail

QUERIES = {
    "incidents": "SELECT incident_reference AS ref, incident_id::text AS id FROM ingest.incidents",
    "decisions": "SELECT i.incident_reference AS ref, d.child_index, d.status "
                 "FROM matcher.match_decisions d JOIN ingest.incidents i USING (incident_id)",
    "reviews": "SELECT incident_id::text AS incident_id, child_index FROM matcher.reviews",
    "notifications": "SELECT n.id::text AS id, i.incident_reference AS ref, n.recipient_key, "
                     "n.state, n.email_id::text AS email_id, (SELECT count(*) FROM "
                     "notifier.notification_children c WHERE c.notification_id = n.id) "
                     "AS children "
                     "FROM notifier.notifications n JOIN ingest.incidents i USING (incident_id)",
    "emails": "SELECT id::text AS id, kind, status, count FROM notifier.notifier_emails",
    "webhooks": "SELECT id, status, body FROM notifier.notifier_webhook_deliveries",
    "links": "SELECT token_hash FROM notifier.notifier_sign_in_links",
    "disclosures": "SELECT event_id::text AS id, published_at FROM (SELECT * FROM "
                   "matcher.outbox UNION ALL SELECT * FROM notifier.outbox) o "
                   "WHERE topic LIKE '%disclosures.v1'",
    "audit": "SELECT id::text AS id, actor, action, notification_id::text AS notification_id "
             "FROM audit.audit_events",
}


def dsn(url: str) -> str:
    """asyncpg's form of a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """One query on a fresh connection (PostgreSQL may have restarted since the last)."""
    conn = await asyncpg.connect(dsn(url), timeout=5)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def snapshot(url: str) -> dict[str, list[asyncpg.Record]]:
    """Every table the checks read."""
    return {name: await query(url, sql) for name, sql in QUERIES.items()}


async def wait_for(check: Callable[[], Awaitable[bool]], *, seconds: float) -> bool:
    """Poll `check` (surviving outages) until true; False when time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if await check():
                return True
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            pass
        await asyncio.sleep(1)
    return False


@dataclass
class Run:
    """What the run did, for the checks."""

    scenario: Scenario
    police: Police
    readers: Readers
    monkey: Monkey
    mail: list[Mail]
    hooks: list[bytes]
    tables: dict[str, list[asyncpg.Record]]


def check_incidents(run: Run) -> None:
    """Every incident accepted once, with the id the client heard, each child decided once."""
    assert not run.police.unexpected, run.police.unexpected[:5]
    # an outage is 503 (retry later); a 500 means a dependency's failure was not recognised
    assert run.police.statuses[500] == 0 and run.readers.statuses[500] == 0
    assert not run.readers.unexpected, run.readers.unexpected[:5]
    assert set(run.police.accepted) == set(run.scenario.children), "not every incident accepted"
    stored = {r["ref"]: r["id"] for r in run.tables["incidents"]}
    assert stored == run.police.accepted
    decided: dict[str, dict[int, str]] = {}
    for row in run.tables["decisions"]:
        decided.setdefault(row["ref"], {})[row["child_index"]] = row["status"]
    wrong = {ref: decided.get(ref) for ref in run.scenario.children
             if [decided.get(ref, {}).get(i) for i in range(len(run.scenario.children[ref]))]
             != run.scenario.decisions(ref)}
    assert not wrong, f"{len(wrong)} incidents decided wrongly, e.g. {list(wrong.items())[:3]}"
    want_reviews = sum(d.count("review") for d in map(run.scenario.decisions,
                                                      run.scenario.children))
    assert len(run.tables["reviews"]) == want_reviews


def check_notifications(run: Run) -> None:
    """Exactly the expected (incident, recipient) notifications, each with its children."""
    got = Counter((r["ref"], r["recipient_key"]) for r in run.tables["notifications"])
    assert max(got.values(), default=1) == 1, "a notification exists twice"
    children = {(r["ref"], r["recipient_key"]): r["children"]
                for r in run.tables["notifications"]}
    want = {(ref, key): n for ref in run.scenario.children
            for key, n in run.scenario.recipients(ref).items()}
    missing, extra = want.keys() - children.keys(), children.keys() - want.keys()
    assert not missing and not extra, (f"{len(missing)} missing, e.g. {sorted(missing)[:3]}; "
                                       f"{len(extra)} unexpected, e.g. {sorted(extra)[:3]}")
    assert children == want, "a notification holds the wrong number of children"


def check_emails(run: Run, *, pushed_early: bool) -> list[str]:
    """Each notification e-mailed once; every sent e-mail arrived; repeats only after a crash.

    In school hours notifications are pushed as they are made, and a child decided after
    the push is e-mailed again (`handlers._add`): then only an upper bound holds.
    Returns the Message-IDs that arrived more than once (each explained by a crash)."""
    notes = run.tables["notifications"]
    assert all(r["state"] != "scheduled" and r["email_id"] for r in notes), "not all pushed"
    emails = {r["id"]: r for r in run.tables["emails"]}
    assert all(r["status"] == "sent" for r in emails.values()), Counter(
        r["status"] for r in emails.values())
    notices = sum(r["count"] for r in emails.values() if r["kind"] == "notice")
    late = sum(r["children"] - 1 for r in notes) if pushed_early else 0
    assert len(notes) <= notices <= len(notes) + late, (
        f"{notices} notices for {len(notes)} notifications")
    arrived: dict[str, list[float]] = {}
    for mail in run.mail:
        arrived.setdefault(mail.message_id, []).append(mail.at)
    assert set(arrived) == {f"<{i}@daybreak>" for i in emails}, "sent and received differ"
    links = {r["token_hash"] for r in run.tables["links"]}
    tokens = [m[1] for m in (re.search(r"token=([A-Za-z0-9_-]+)", m.body) for m in run.mail) if m]
    dead = [t for t in tokens if hashlib.sha256(t.encode()).hexdigest() not in links]
    assert tokens and not dead, f"{len(dead)} e-mails carry a sign-in link never stored"
    repeated = [mid for mid, times in arrived.items() if len(times) > 1]
    for mid in repeated:
        times = arrived[mid]
        unexplained = [b for a, b in itertools.pairwise(times)
                       if not run.monkey.explains(a, b)]
        assert not unexplained, f"{mid} e-mailed again with no crash in between"
    return repeated


def check_webhooks(run: Run) -> int:
    """Every webhook delivered; returns how many arrived more than once."""
    rows = run.tables["webhooks"]
    assert rows and all(r["status"] == "delivered" for r in rows), Counter(
        r["status"] for r in rows)
    arrived = Counter(json.loads(body)["delivery_id"] for body in run.hooks)
    assert set(arrived) == {json.loads(r["body"])["delivery_id"] for r in rows}
    crashes = sum(1 for *_, what in run.monkey.events if what.split(":")[0] in
                  ("notifier", "postgres"))
    again = sum(n - 1 for n in arrived.values())
    assert again <= crashes, f"{again} webhook repeats for {crashes} crashes"
    return again


def check_audit(run: Run, children: dict[str, int]) -> None:
    """Each staged disclosure in the log exactly once, and each opened notification's view."""
    staged = {r["id"] for r in run.tables["disclosures"]}
    assert staged and all(r["published_at"] for r in run.tables["disclosures"])
    logged = Counter(r["id"] for r in run.tables["audit"] if not r["actor"].startswith(
        "system:retention"))
    assert max(logged.values()) == 1
    assert set(logged) == staged, (f"{len(staged - set(logged))} disclosures not logged, "
                                   f"{len(set(logged) - staged)} logged but never staged")
    views = Counter(r["notification_id"] for r in run.tables["audit"]
                    if r["action"] == "notification.view")
    for nid in run.readers.opened:
        # one view per child the answer showed, at least (a child can join a notification
        # after it was opened), and never more than every child on every attempt
        shown = run.readers.shown[nid]
        assert 1 <= shown <= children[nid], nid
        assert shown <= views[nid] <= children[nid] * run.readers.attempts[nid], nid
    assert set(views) <= set(run.readers.attempts)
