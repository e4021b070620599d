"""One morning in a real browser: police post an incident, the matcher finds the child, the
notifier's dispatcher e-mails the DSL when the push time comes, and the DSL follows the link,
signs in with password + TOTP, reads the notification and acknowledges it in Chromium; the
read is on `disclosures.v1` as a portal disclosure by that DSL.

Ingest, matcher and notifier run in-process under uvicorn on free loopback ports (the browser
needs a real socket); mail goes to an aiosmtpd server. Chromium is Debian's /usr/bin/chromium
(`scripts/install-browser.sh`), driven by the `playwright` package.
"""

from __future__ import annotations

import json
import random
import re
import string
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pyotp
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from schemas import topics
from services.common.db import service_engine
from services.common.settings import Settings
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.notifier.content import opened_notification
from services.notifier.main import build_app as build_notifier
from services.notifier.models import notifications
from services.notifier.settings import NotifierSettings
from tests.support.api import issuer_for, new_police_client, new_user, police_token
from tests.support.browser import CHROMIUM_ARGS, serving, until
from tests.support.ids import next_email, next_la, next_urn
from tests.support.incidents import incident_body
from tests.support.kafka import read_topic
from tests.support.ports import free_port
from tests.support.registry import pupil, seed
from tests.support.smtp import Inbox

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"


@dataclass
class ShiftedClock:
    """The real time plus an offset the test moves (the dispatcher's push time)."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset




async def test_dsl_reads_and_acknowledges_in_a_browser(
    settings: Settings, chromium: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    la, urn = next_la(), next_urn()
    given, family = "Maya", "".join(random.choices(string.ascii_lowercase, k=9)).title()
    born = date(2012, 1, 1) + timedelta(days=random.randint(0, 2500))
    dsl_email = next_email("dsl")
    await seed(settings, las=[la], school_rows=[{
        "urn": urn, "name": "Browser Primary", "la_code": la, "postcode": "WV1 1AA",
        "contacts": [{"role": "dsl", "name": "D", "email": dsl_email}]}],
        pupil_rows=[pupil(urn, "", given, family, born.isoformat(),
                          address_line1="3 Elm Way", postcode="WV1 1AA")])
    user_id, totp_secret = await new_user(settings, email=dsl_email, password=PASSWORD,
                                          role="dsl", school_urns=[urn], la_codes=[])
    body = incident_body()
    body["children"][0].update(given_name=given, family_name=family,
                               date_of_birth=born.isoformat(), school_hint=None,
                               address={"line1": "3 Elm Way", "postcode": "WV1 1AA"})
    body["children"][0].pop("upn")

    inbox, smtp_port, notifier_port = Inbox(), free_port(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    notifier_settings = NotifierSettings(**settings.model_dump() | {
        "smtp_port": smtp_port, "portal_base_url": f"http://127.0.0.1:{notifier_port}",
        "cookie_secure": False, "dispatch_interval_s": 0.2})
    clock = ShiftedClock()
    notifier_app = build_notifier(notifier_settings, issuer=issuer_for(settings, clock=clock))
    notifier_app.state.ctx.clock = clock  # the dispatcher and the portal read ctx.clock()
    engine = service_engine(settings, "notifier", pool_size=1)
    try:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(serving(build_matcher(settings), free_port()))
            portal = await stack.enter_async_context(serving(notifier_app, notifier_port))
            ingest = await stack.enter_async_context(serving(build_ingest(
                settings, issuer=issuer_for(settings)), free_port()))

            async with httpx.AsyncClient(base_url=ingest, timeout=10) as client:
                client_id, secret = await new_police_client(settings, "WMP")
                token = await police_token(client, client_id, secret)
                police = {"Authorization": f"Bearer {token}"}
                posted = await client.post("/v1/incidents", json=body, headers=police)
                assert posted.status_code == 202, posted.text

            async def notification_row() -> Any:
                async with engine.connect() as conn:
                    found = (await conn.execute(select(notifications).where(
                        notifications.c.school_urn == urn))).first()
                    # the incident and the school's words are sealed: opened as the notifier
                    return None if found is None else SimpleNamespace(
                        **opened_notification(conn, found._mapping))

            row = await until(notification_row, what="the notification")
            assert row.push_at is not None
            if row.push_at > datetime.now(UTC) + timedelta(seconds=1):
                # outside a school-day morning the e-mail waits for the push time (inside
                # one, as on the real clock at 08:17 on a Tuesday, it goes at once)
                assert not inbox.to(dsl_email)
            # due: the dispatcher's clock jumps to the push time (the next school-day window)
            clock.offset = max(timedelta(0), row.push_at - datetime.now(UTC))

            async def mails() -> list[str]:
                return inbox.to(dsl_email)

            [mail] = await until(mails, what="the e-mail")
            # back to the real time: session tokens and TOTP codes are checked against it
            clock.offset = timedelta(0)
            assert given not in mail and family not in mail and born.isoformat() not in mail
            link = re.search(re.escape(portal) + r"/portal/sign-in\?token=[\w-]+", mail)
            assert link, mail

            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(chromium),
                                                   headless=True, args=CHROMIUM_ARGS)
                try:
                    page = await browser.new_page()
                    await page.goto(link.group(0))
                    # the link's page: looking at it used nothing (it is used on sign-in)
                    assert page.url == link.group(0)
                    await expect(page.locator(".govuk-notification-banner")).to_contain_text(
                        "Sign in to read your new notifications")
                    await page.fill("#email", dsl_email)
                    await page.fill("#password", PASSWORD)
                    await page.fill("#totp", pyotp.TOTP(totp_secret).now())
                    await page.get_by_role("button", name="Sign in").click()
                    await page.wait_for_url(f"{portal}/portal/")
                    await expect(page.locator("h1")).to_have_text("Notifications")
                    assert family not in await page.content()  # the inbox names no child
                    await page.locator(f'a[href="/portal/notifications/{row.id}"]').click()
                    await page.wait_for_url(f"{portal}/portal/notifications/{row.id}")
                    await expect(page.locator("h3.govuk-summary-card__title")).to_have_text(
                        f"{given} {family}")
                    await page.check("#action-school_nurse")
                    await page.check("#attended-yes")
                    await page.get_by_role("button", name="Acknowledge").click()
                    await page.wait_for_url(f"{portal}/portal/?acknowledged=1")
                    await expect(page.get_by_role("alert")).to_contain_text(
                        "Acknowledgement recorded.")
                finally:
                    await browser.close()

            acked = await notification_row()
            assert acked.state == "acknowledged" and acked.acknowledged_by == user_id
            assert acked.action_taken == "attended this morning: yes"

            async def portal_views() -> list[dict[str, Any]]:
                records = await read_topic(settings.kafka(),
                                           settings.topic(topics.DISCLOSURES), timeout_s=1)
                events = [json.loads(r.value) for r in records if r.value]
                return [e["payload"] for e in events if e["type"] == "DisclosureRecorded"
                        and e["payload"].get("notification_id") == str(row.id)]

            async def both_views() -> list[dict[str, Any]]:
                views = await portal_views()
                return views if len(views) >= 2 else []

            views = await until(both_views, seconds=30, what="the disclosures on Kafka")
            # the child's history beside it is a disclosure of its own
            [seen] = [v for v in views if v["action"] == "notification.view"]
            assert [v["action"] for v in views if v is not seen] == ["history.read"]
            assert seen["channel"] == "portal" and seen["actor"] == user_id
            assert seen["actor_role"] == "dsl"
            assert seen["school_urn"] == urn and family not in json.dumps(seen)
            uuid.UUID(seen["disclosure_id"])
    finally:
        smtp.stop()
        await engine.dispose()
