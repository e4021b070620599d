"""The LA officer's morning in a real browser: police report a child two schools' rolls fit
equally, the matcher queues a review, the notifier e-mails the LA's review contact; the
officer follows the e-mail to the portal, signs in with password + TOTP, opens the queue and
the review, compares the candidates side by side (also on a 375 px phone), resolves it to one
candidate with a reason using the keyboard alone, and that school's DSL, signing in in a
second browser context, finds the notification in their inbox.

Ingest, matcher and notifier run in-process under uvicorn on free loopback ports; the
notifier's portal calls the matcher at its real address with the officer's own token; mail
goes to an aiosmtpd server. Chromium is Debian's /usr/bin/chromium, driven by `playwright`.
"""

from __future__ import annotations

import random
import re
import string
from contextlib import AsyncExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from aiosmtpd.controller import Controller

from services.common.settings import Settings
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.support.api import issuer_for, new_police_client, new_user, police_token
from tests.support.browser import CHROMIUM_ARGS, chromium_or_skip, serving, until
from tests.support.ids import next_email, next_la, next_urn
from tests.support.incidents import incident_body
from tests.support.ports import free_port
from tests.support.registry import pupil, seed
from tests.support.smtp import Inbox
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"
PHONE = {"width": 375, "height": 812}
REASON = "Same household address as the police report"


@pytest.fixture(scope="module")
def chromium() -> Path:
    return chromium_or_skip()


async def _register(matcher: str, la: str, contacts: list[dict[str, str]]) -> None:
    """The LA's contacts through the registry API, as an admin puts them (announced on
    registry.v1 to the notifier's copy)."""
    async with httpx.AsyncClient(base_url=matcher, timeout=10) as client:
        resp = await client.put(f"/v1/local-authorities/{la}", headers=bearer(person("admin")),
                                json={"name": f"LA {la}", "contacts": contacts})
        assert resp.status_code in (200, 201), resp.text


async def test_the_la_officer_resolves_a_review_and_the_school_is_told(
    settings: Settings, chromium: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    la, north, south = next_la(), next_urn(), next_urn()
    family = "".join(random.choices(string.ascii_lowercase, k=9)).title()
    born = (date(2015, 1, 1) + timedelta(days=random.randint(0, 900))).isoformat()
    review_email, officer_email, dsl_email = (next_email("review", "la.test"),
                                              next_email("officer", "la.test"), next_email("dsl"))
    await seed(settings, las=[la], school_rows=[
        {"urn": urn, "name": name, "la_code": la, "postcode": postcode,
         "contacts": [{"role": "dsl", "name": "D", "email": email},
                      {"role": "deputy_dsl", "name": "E", "email": next_email("deputy")}]}
        for urn, name, postcode, email in (
            (north, "North Primary", "B1 1AA", next_email("dsl")),
            (south, "South Primary", "B9 9ZZ", dsl_email))],
        pupil_rows=[pupil(north, "", "Oliver", family, born, gender="M",
                          address_line1="1 High St", postcode="B1 1AA"),
                    pupil(south, "", "Oliver", family, born, gender="M",
                          address_line1="99 Low Rd", postcode="B9 9ZZ")])
    _, officer_totp = await new_user(settings, email=officer_email, password=PASSWORD,
                                     role="la_officer", school_urns=[], la_codes=[la])
    _, dsl_totp = await new_user(settings, email=dsl_email, password=PASSWORD, role="dsl",
                                 school_urns=[south], la_codes=[])
    body = incident_body()
    body["children"][0].update(given_name="Oliver", family_name=family, date_of_birth=born,
                               gender="M", address=None, school_hint=None)
    body["children"][0].pop("upn")

    mail, smtp_port = Inbox(), free_port()
    smtp = Controller(mail, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    matcher_port, notifier_port = free_port(), free_port()
    notifier_settings = NotifierSettings(**settings.model_dump() | {
        "smtp_port": smtp_port, "portal_base_url": f"http://127.0.0.1:{notifier_port}",
        "matcher_url": f"http://127.0.0.1:{matcher_port}", "cookie_secure": False,
        "dispatch_interval_s": 0.2})
    try:
        async with AsyncExitStack() as stack:
            matcher = await stack.enter_async_context(serving(build_matcher(
                settings, issuer=issuer_for(settings)), matcher_port))
            portal = await stack.enter_async_context(serving(build_notifier(
                notifier_settings, issuer=issuer_for(settings)), notifier_port))
            ingest = await stack.enter_async_context(serving(build_ingest(
                settings, issuer=issuer_for(settings)), free_port()))
            await _register(matcher, la, [
                {"role": "safeguarding", "name": "LADO desk",
                 "email": next_email("lado", "la.test")},
                {"role": "review", "name": "Encompass team", "email": review_email}])
            async with httpx.AsyncClient(base_url=ingest, timeout=10) as client:
                client_id, secret = await new_police_client(settings, "WMP")
                token = await police_token(client, client_id, secret)
                police = {"Authorization": f"Bearer {token}"}
                posted = await client.post("/v1/incidents", json=body, headers=police)
                assert posted.status_code == 202, posted.text

            # the review alert: content-free, with a way into the portal
            async def alerts() -> list[str]:
                return mail.to(review_email)

            [alert] = await until(alerts, seconds=90, what="the review alert e-mail")
            assert family not in alert and born not in alert and "Oliver" not in alert
            link = re.search(re.escape(portal) + r"/portal/sign-in\?token=[\w-]+", alert)
            assert link, alert

            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(chromium),
                                                   headless=True, args=CHROMIUM_ARGS)
                try:
                    desk = await browser.new_context()
                    page = await desk.new_page()
                    await page.goto(link.group(0))
                    assert page.url == f"{portal}/portal/sign-in?link=ok"
                    await _sign_in(page, officer_email, officer_totp)
                    await page.wait_for_url(f"{portal}/portal/")
                    await page.get_by_role("navigation").get_by_role(
                        "link", name="Review queue").click()
                    await page.wait_for_url(f"{portal}/portal/reviews")
                    await expect(page.locator("h1")).to_have_text("Review queue")
                    countdown = page.locator(".countdown").first
                    await expect(countdown).to_have_text(
                        re.compile(r"^(\d+ h( \d+ min)? left|\d+ min left|overdue)$"))
                    assert family not in await page.content()  # the queue names no child
                    await page.get_by_role("link", name=re.compile("^Open review")).click()
                    await page.wait_for_url(re.compile(re.escape(portal) + r"/portal/reviews/"))
                    review_url = page.url

                    # compare: the child beside each candidate, agreement said in words
                    table = page.locator("table.compare")
                    await expect(table.locator("thead th")).to_have_count(4)
                    await expect(table.get_by_role("columnheader", name=re.compile(
                        "South Primary"))).to_be_visible()
                    address = table.get_by_role("row", name=re.compile("^Address"))
                    await expect(address).to_contain_text("Agrees (same household)")
                    await expect(address).to_contain_text("Disagrees")

                    # a phone: the page fits 375 px, the comparison scrolls in its own box
                    phone = await browser.new_context(viewport=PHONE,
                                                      storage_state=await desk.storage_state())
                    small = await phone.new_page()
                    for url in (f"{portal}/portal/reviews", review_url):
                        await small.goto(url)
                        widths = await small.evaluate(
                            "() => [document.documentElement.scrollWidth, window.innerWidth]")
                        assert widths[0] <= widths[1] == 375, (url, widths)
                    scroller = await small.locator(".table-scroll").evaluate(
                        "e => [e.scrollWidth, e.clientWidth]")
                    assert scroller[0] > scroller[1], scroller
                    await phone.close()

                    # the keyboard alone: skip link, the candidate's radio, the reason, submit
                    await page.goto(review_url)
                    await page.keyboard.press("Tab")
                    assert await _focused(page, "textContent") == "Skip to main content"
                    await page.keyboard.press("Enter")
                    assert await _focused(page, "id") == "main"
                    for _ in range(20):
                        await page.keyboard.press("Tab")
                        if await _focused(page, "name") == "choice":
                            break
                    assert await _focused(page, "name") == "choice"
                    assert await page.evaluate(
                        "() => getComputedStyle(document.activeElement).outlineStyle") == "solid"
                    values = await page.locator('input[name="choice"]').evaluate_all(
                        "rs => rs.map(r => r.value)")
                    target = values.index(f"school:{south}:")
                    await page.keyboard.press("Space")
                    for _ in range(target):
                        await page.keyboard.press("ArrowDown")
                    assert await page.locator(f'input[value="school:{south}:"]').is_checked()
                    await page.keyboard.press("Tab")
                    assert await _focused(page, "id") == "reason"
                    await page.keyboard.type(REASON)
                    await page.keyboard.press("Tab")
                    assert await _focused(page, "textContent") == "Resolve review"
                    await page.keyboard.press("Enter")
                    await page.wait_for_url(f"{portal}/portal/reviews?resolved=1")
                    await expect(page.get_by_role("status")).to_have_text("Review resolved.")
                    await desk.close()

                    # the school's DSL, in a second context, sees the notification arrive
                    school = await browser.new_context()
                    inbox = await school.new_page()
                    await inbox.goto(f"{portal}/portal/sign-in")
                    await _sign_in(inbox, dsl_email, dsl_totp)
                    await inbox.wait_for_url(f"{portal}/portal/")

                    async def arrived() -> bool:
                        await inbox.reload()
                        links = inbox.locator('a[href^="/portal/notifications/"]')
                        return await links.count() > 0

                    await until(arrived, seconds=60, what="the school's notification")
                    await expect(inbox.locator("table")).to_contain_text(
                        f"South Primary (URN {south})")
                    await inbox.locator('a[href^="/portal/notifications/"]').first.click()
                    await expect(inbox.locator("section.child h3")).to_have_text(
                        f"Oliver {family}")
                    await school.close()
                finally:
                    await browser.close()
    finally:
        smtp.stop()


async def _sign_in(page: Any, email: str, totp: str) -> None:
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.fill("#totp", pyotp.TOTP(totp).now())
    await page.get_by_role("button", name="Sign in").click()


async def _focused(page: Any, attribute: str) -> Any:
    return await page.evaluate(f"() => document.activeElement.{attribute}")
