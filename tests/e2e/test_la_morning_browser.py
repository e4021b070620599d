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
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
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
from tests.support.browser import CHROMIUM_ARGS, serving, until
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


@dataclass
class Morning:
    """An LA with two schools that each have an Oliver of one name and birthday on roll, the
    LA's review contact, an LA officer, and the DSL of the school the officer will choose."""

    la: str
    north: str
    south: str
    family: str
    born: str
    review_email: str
    officer: tuple[str, str]  # e-mail address, TOTP secret
    dsl: tuple[str, str]


@dataclass
class Running:
    """Where the services answer, and the mail they sent."""

    matcher: str
    portal: str
    ingest: str
    mail: Inbox


async def a_morning(settings: Settings) -> Morning:
    la, north, south = next_la(), next_urn(), next_urn()
    family = "".join(random.choices(string.ascii_lowercase, k=9)).title()
    born = (date(2015, 1, 1) + timedelta(days=random.randint(0, 900))).isoformat()
    officer, dsl = next_email("officer", "la.test"), next_email("dsl")
    await seed(settings, las=[la], school_rows=[
        {"urn": urn, "name": name, "la_code": la, "postcode": postcode,
         "contacts": [{"role": "dsl", "name": "D", "email": email},
                      {"role": "deputy_dsl", "name": "E", "email": next_email("deputy")}]}
        for urn, name, postcode, email in ((north, "North Primary", "B1 1AA", next_email("dsl")),
                                           (south, "South Primary", "B9 9ZZ", dsl))],
        pupil_rows=[pupil(north, "", "Oliver", family, born, gender="M",
                          address_line1="1 High St", postcode="B1 1AA"),
                    pupil(south, "", "Oliver", family, born, gender="M",
                          address_line1="99 Low Rd", postcode="B9 9ZZ")])
    _, officer_totp = await new_user(settings, email=officer, password=PASSWORD,
                                     role="la_officer", school_urns=[], la_codes=[la])
    _, dsl_totp = await new_user(settings, email=dsl, password=PASSWORD, role="dsl",
                                 school_urns=[south], la_codes=[])
    return Morning(la, north, south, family, born, next_email("review", "la.test"),
                   (officer, officer_totp), (dsl, dsl_totp))


@asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[Running]:
    """Matcher, notifier (its portal calling the matcher's address) and ingest, with mail."""
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
            yield Running(matcher, portal, ingest, mail)
    finally:
        smtp.stop()


async def the_la_and_the_report(settings: Settings, run: Running, m: Morning) -> None:
    """The admin gives the LA its contacts (announced to the notifier's copy); the police
    report Oliver with no address and no school: both rolls fit, so he goes to review."""
    async with httpx.AsyncClient(base_url=run.matcher, timeout=10) as matcher:
        resp = await matcher.put(f"/v1/local-authorities/{m.la}", headers=bearer(
            person("admin")), json={"name": f"LA {m.la}", "contacts": [
                {"role": "safeguarding", "name": "LADO", "email": next_email("lado", "la.test")},
                {"role": "review", "name": "Encompass team", "email": m.review_email}]})
        assert resp.status_code in (200, 201), resp.text
    body = incident_body()
    body["children"][0].update(given_name="Oliver", family_name=m.family, date_of_birth=m.born,
                               gender="M", address=None, school_hint=None)
    body["children"][0].pop("upn")
    async with httpx.AsyncClient(base_url=run.ingest, timeout=10) as ingest:
        token = await police_token(ingest, *await new_police_client(settings, "WMP"))
        posted = await ingest.post("/v1/incidents", json=body,
                                   headers={"Authorization": f"Bearer {token}"})
        assert posted.status_code == 202, posted.text


async def sign_in(page: Any, who: tuple[str, str]) -> None:
    await page.fill("#email", who[0])
    await page.fill("#password", PASSWORD)
    await page.fill("#totp", pyotp.TOTP(who[1]).now())
    await page.get_by_role("button", name="Sign in").click()


async def focused(page: Any, attribute: str) -> Any:
    return await page.evaluate(f"() => document.activeElement.{attribute}")


async def open_the_review(page: Any, portal: str, link: str, m: Morning) -> str:
    """From the e-mailed link to the review page, through sign-in and the queue; its URL."""
    from playwright.async_api import expect

    await page.goto(link)
    # the link's page (the review contact's team address: no officer uses it up)
    assert page.url == link
    await sign_in(page, m.officer)
    await page.wait_for_url(f"{portal}/portal/")
    await page.get_by_role("navigation", name="Portal sections").get_by_role(
        "link", name="Review queue").click()
    await page.wait_for_url(f"{portal}/portal/reviews")
    await expect(page.locator("h1")).to_have_text("Review queue")
    await expect(page.locator(".app-countdown").first).to_have_text(
        re.compile(r"^(school day starts in \d+ \w+( \d+ \w+)?|overdue: school day started .+)$"))
    assert m.family not in await page.content()  # the queue names no child
    await page.get_by_role("link", name=re.compile("^Open review")).click()
    await page.wait_for_url(re.compile(re.escape(portal) + r"/portal/reviews/"))
    url: str = page.url
    return url


async def compare(page: Any) -> None:
    """The child beside each candidate, each field's agreement said in words."""
    from playwright.async_api import expect

    table = page.locator("table.app-compare")
    await expect(table.locator("thead th")).to_have_count(4)
    await expect(table.get_by_role("columnheader", name=re.compile("South Primary"))
                 ).to_be_visible()
    given = table.get_by_role("row", name=re.compile("^Given name"))
    await expect(given.locator(".app-mark--agree")).to_have_text(["Agrees"] * 2)
    address = table.get_by_role("row", name=re.compile("^Address"))
    await expect(address.locator(".app-mark--unknown")).to_have_text(
        ["Not compared: not given"] * 2)  # the police gave no address


async def fits_a_phone(browser: Any, signed_in: Any, urls: list[str]) -> None:
    """At 375 px nothing is wider than the screen; the comparison scrolls in its own box."""
    phone = await browser.new_context(viewport=PHONE,
                                      storage_state=await signed_in.storage_state())
    page = await phone.new_page()
    for url in urls:
        await page.goto(url)
        widths = await page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1] == PHONE["width"], (url, widths)
    box = await page.locator(".app-table-scroll").evaluate(
        "e => [e.scrollWidth, e.clientWidth]")
    assert box[0] > box[1], box
    await phone.close()


async def resolve_by_keyboard(page: Any, url: str, urn: str) -> None:
    """Skip link, the candidate's radio, the reason, the button: no mouse."""
    await page.goto(url)
    await page.keyboard.press("Tab")
    assert await focused(page, "textContent") == "Skip to main content"
    await page.keyboard.press("Enter")
    assert await focused(page, "id") == "main-content"
    for _ in range(20):
        await page.keyboard.press("Tab")
        if await focused(page, "name") == "choice":
            break
    assert await focused(page, "name") == "choice"
    # the GOV.UK radio's focus: a yellow ring drawn round its label's circle
    assert "rgb(255, 221, 0)" in await page.evaluate(
        "() => getComputedStyle(document.querySelector("
        "`label[for='${document.activeElement.id}']`), '::before').boxShadow")
    values = await page.locator('input[name="choice"]').evaluate_all(
        "radios => radios.map(r => r.value)")
    await page.keyboard.press("Space")
    for _ in range(values.index(f"school:{urn}:")):
        await page.keyboard.press("ArrowDown")
    assert await page.locator(f'input[value="school:{urn}:"]').is_checked()
    await page.keyboard.press("Tab")
    assert await focused(page, "id") == "reason"
    await page.keyboard.type(REASON)
    await page.keyboard.press("Tab")
    assert await focused(page, "textContent") == "Resolve review"
    await page.keyboard.press("Enter")


async def the_dsl_finds_it(browser: Any, portal: str, m: Morning) -> None:
    """The chosen school's DSL signs in (a second context) and opens the notification."""
    from playwright.async_api import expect

    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{portal}/portal/sign-in")
    await sign_in(page, m.dsl)
    await page.wait_for_url(f"{portal}/portal/")
    links = page.locator('a[href^="/portal/notifications/"]')

    async def arrived() -> bool:
        await page.reload()
        return await links.count() > 0

    await until(arrived, seconds=60, what="the school's notification")
    await expect(page.locator("table")).to_contain_text(f"South Primary (URN {m.south})")
    await links.first.click()
    await expect(page.locator("h3.govuk-summary-card__title")).to_have_text(
        f"Oliver {m.family}")
    await context.close()


async def test_the_la_officer_resolves_a_review_and_the_school_is_told(
    settings: Settings, chromium: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    m = await a_morning(settings)
    async with services(settings) as run:
        await the_la_and_the_report(settings, run, m)

        async def alerts() -> list[str]:
            return run.mail.to(m.review_email)

        [alert] = await until(alerts, seconds=90, what="the review alert e-mail")
        assert m.family not in alert and m.born not in alert and "Oliver" not in alert
        link = re.search(re.escape(run.portal) + r"/portal/sign-in\?token=[\w-]+", alert)
        assert link, alert

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(chromium), headless=True,
                                               args=CHROMIUM_ARGS)
            try:
                desk = await browser.new_context()
                page = await desk.new_page()
                review_url = await open_the_review(page, run.portal, link.group(0), m)
                await compare(page)
                await fits_a_phone(browser, desk, [f"{run.portal}/portal/reviews", review_url])
                await resolve_by_keyboard(page, review_url, m.south)
                await page.wait_for_url(f"{run.portal}/portal/reviews?resolved=1")
                await expect(page.get_by_role("alert")).to_contain_text("Review resolved.")
                await desk.close()
                await the_dsl_finds_it(browser, run.portal, m)
            finally:
                await browser.close()
