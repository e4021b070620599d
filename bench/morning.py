"""Benchmark the morning push: 20,000 notifications over 2,000 schools all due at 07:00.

Runs in a throwaway database (created, migrated and dropped here) as the application role.
Every school has a DSL contact; the notifications go straight into the notifier's table with
`push_at` = the window opening. Then `--dispatchers` dispatchers (each with its own engine and
SMTP mailer, as separate notifier processes would have) run their service loop
(`Dispatcher.run`, every `--interval` seconds) against a real aiosmtpd server on a free port,
from the window opening until the last e-mail is accepted. Target: all sent within 60 s.

    . .daybreak/env && .venv/bin/python bench/morning.py [--notifications 20000]
        [--schools 2000] [--dispatchers 2] [--interval 1.0] [--batch 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import make_engine
from services.common.safe_http import Egress
from services.notifier.channels import HttpxWebhookPoster, SmtpMailer
from services.notifier.dispatch import Dispatcher
from services.notifier.models import emails, local_authorities, notifications, schools
from services.notifier.settings import NotifierSettings
from tests.support.db import create_test_database, drop_test_database
from tests.support.ports import free_port

WINDOW_OPENS = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # a Monday, 07:00 in London (GMT)
TARGET_S = 60.0
DAY_STARTS_AT = datetime(2026, 1, 1, 8, 45).time()


class Counter:
    """An SMTP sink that counts accepted messages and notes when the last one came."""

    def __init__(self) -> None:
        self.accepted = 0
        self.last_at = 0.0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.accepted += 1
            self.last_at = time.perf_counter()
        return "250 OK"


async def load(engine: AsyncEngine, n_notifications: int, n_schools: int) -> None:
    """The notifier's copy of the registry (LAs, schools with a DSL) and the due notifications."""
    las = [f"B{i:03d}" for i in range(max(1, n_schools // 20))]
    async with engine.begin() as conn:
        await conn.execute(insert(local_authorities), [
            {"la_code": la, "name": f"LA {la}", "changed_at": WINDOW_OPENS,
             "contacts": [{"role": "safeguarding", "name": "S", "email": f"mash@{la}.test"}]}
            for la in las])
        await conn.execute(insert(schools), [
            {"urn": str(200_000 + i), "name": f"School {i}", "la_code": las[i % len(las)],
             "status": "open", "participates": True, "day_starts_at": DAY_STARTS_AT,
             "deputy_after_minutes": 60, "la_after_minutes": 120, "changed_at": WINDOW_OPENS,
             "contacts": [{"role": "dsl", "name": "D", "email": f"dsl@s{i}.test"},
                          {"role": "deputy_dsl", "name": "E", "email": f"deputy@s{i}.test"}]}
            for i in range(n_schools)])
        created = WINDOW_OPENS - timedelta(hours=10)
        rows = []
        for i in range(n_notifications):
            school = i % n_schools
            rows.append({
                "id": uuid.uuid4(), "incident_id": uuid.uuid4(),
                "recipient_key": f"school:{200_000 + school}", "school_urn": str(200_000 + school),
                "la_code": las[school % len(las)], "recipient_role": "dsl",
                "state": "scheduled", "push_at": WINDOW_OPENS,
                "incident": {"force_code": "WMP", "incident_type": "domestic_abuse",
                             "disclosure_fields": []},
                "deputy_at": WINDOW_OPENS + timedelta(hours=2, minutes=45),
                "la_at": WINDOW_OPENS + timedelta(hours=3, minutes=45), "created_at": created})
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(notifications), rows[start:start + 5000])


async def remaining(engine: AsyncEngine) -> tuple[int, int, int]:
    """(notifications still scheduled, e-mails staged and pending, e-mails sent)."""
    async with engine.connect() as conn:
        scheduled = (await conn.execute(select(func.count()).where(
            notifications.c.state == "scheduled"))).scalar_one()
        pending = (await conn.execute(select(func.count()).where(
            emails.c.status == "pending"))).scalar_one()
        sent = (await conn.execute(select(func.count()).where(
            emails.c.status == "sent"))).scalar_one()
    return scheduled, pending, sent


async def main(args: argparse.Namespace) -> None:
    urls = await create_test_database()
    counter, port = Counter(), free_port()
    smtp = Controller(counter, hostname="127.0.0.1", port=port)
    smtp.start()
    admin = make_engine(urls["owner_url"], pool_size=2)
    engines = [make_engine(urls["notifier_database_url"], schema="notifier", pool_size=args.pool)
               for _ in range(args.dispatchers)]
    try:
        started = time.perf_counter()
        await load(admin, args.notifications, args.schools)
        print(f"loaded {args.notifications} notifications over {args.schools} schools "
              f"in {time.perf_counter() - started:.1f} s")

        t0 = time.perf_counter()

        def clock() -> datetime:  # the morning, starting at the window opening
            return WINDOW_OPENS + timedelta(seconds=time.perf_counter() - t0)

        stop = asyncio.Event()
        async with httpx.AsyncClient(timeout=5) as http:
            tasks = [asyncio.create_task(Dispatcher(
                engine=engine, clock=clock, portal_base_url="https://daybreak.example",
                mailer=SmtpMailer(host="127.0.0.1", port=port, sender="daybreak@bench"),
                webhooks=HttpxWebhookPoster(http, egress=Egress()), batch_size=args.batch,
            ).run(stop, interval_s=args.interval)) for engine in engines]
            while True:
                await asyncio.sleep(0.1)
                scheduled, pending, sent = await remaining(admin)
                if (scheduled, pending) == (0, 0) and counter.accepted >= sent:
                    break
                if time.perf_counter() - t0 > args.give_up:
                    print(f"gave up after {args.give_up:.0f} s: {scheduled} notifications "
                          f"still scheduled, {pending} e-mails pending")
                    break
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        seconds = (counter.last_at or time.perf_counter()) - t0
        _, _, sent = await remaining(admin)
        print(f"dispatchers {args.dispatchers}, interval {args.interval} s, batch {args.batch}")
        print(f"{args.notifications} notifications -> {sent} e-mails "
              f"({counter.accepted} accepted by SMTP)")
        print(f"{seconds:.1f} s from window opening to last e-mail accepted; "
              f"{counter.accepted / seconds:.0f} e-mails/s, "
              f"{args.notifications / seconds:.0f} notifications/s")
        verdict = "OK" if seconds <= TARGET_S else "MISSED"
        print(f"target: <= {TARGET_S:.0f} s -> {verdict}")
    finally:
        smtp.stop()
        for engine in [admin, *engines]:
            await engine.dispose()
        await drop(urls)


async def drop(urls: dict[str, str]) -> None:
    """Drop the throwaway database once the app role's closed connections have gone."""
    for attempt in range(20):
        try:
            await drop_test_database(urls)
            return
        except Exception:
            if attempt == 19:
                raise
            await asyncio.sleep(0.5)


if __name__ == "__main__":
    defaults = NotifierSettings.model_fields
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=20_000)
    parser.add_argument("--schools", type=int, default=2_000)
    parser.add_argument("--dispatchers", type=int, default=2)
    parser.add_argument("--interval", type=float,
                        default=defaults["dispatch_interval_s"].default)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--pool", type=int, default=5)
    parser.add_argument("--give-up", type=float, default=600)
    asyncio.run(main(parser.parse_args()))
