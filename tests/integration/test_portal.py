"""The DSL portal in-process against the real database: sign-in, CSRF, inbox, read, acknowledge."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.auth_api import SESSION_COOKIE
from services.common.local_time import LONDON
from services.common.models import outbox
from services.common.settings import Settings
from services.notifier.handlers import NotifierDeps, on_child_matched
from services.notifier.models import notifications
from services.notifier.portal import CSRF_COOKIE
from tests.support.clock import Clock
from tests.support.notifier import add_school, matched, rows_for
from tests.support.portal import PASSWORD, csrf_of, new_dsl, sign_in

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(notifier_engine: AsyncEngine) -> AsyncEngine:
    """The portal's tests act as the notifier."""
    return notifier_engine


async def test_sign_in_sets_a_strict_session_cookie_and_every_page_is_locked_down(
    engine: AsyncEngine, clock: Clock, portal: httpx.AsyncClient, settings: Settings
) -> None:
    school = await add_school(engine)
    email, totp = await new_dsl(settings, school)
    assert (await portal.get("/portal/")).headers["location"] == "/portal/sign-in"
    page = await portal.get("/portal/sign-in")
    assert page.status_code == 200 and '<label class="govuk-label" for="totp">' in page.text
    assert "<main" in page.text and 'name="viewport"' in page.text
    # one script, the portal's own, same-origin and allowed by this response's nonce alone
    [script] = re.findall(r"<script[^>]*>", page.text)
    nonce = re.search(r'nonce="([^"]+)"', script)
    assert nonce and 'src="/portal/static/portal.mjs"' in script
    assert f"script-src 'nonce-{nonce.group(1)}';" in page.headers["content-security-policy"]
    css = await portal.get("/portal/static/portal.css")
    if css.status_code == 200:  # built by scripts/install-frontend.sh
        assert css.headers["content-type"].startswith("text/css")
        assert "govuk-summary-list" in css.text and "GDS Transport" not in css.text
        assert "overflow-wrap:anywhere" not in css.text.replace(" ", "")
    assert (await portal.get("/portal/static/..%2Fportal.py")).status_code == 404
    for resp in (page, css):
        assert resp.headers["content-security-policy"].startswith("default-src 'none';")
        assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "no-referrer"
        assert resp.headers["cache-control"] == "no-store"
    assert portal.cookies[CSRF_COOKIE] == csrf_of(page)  # double-submit: cookie and field
    assert all(f in page.headers["set-cookie"].lower() for f in ("httponly", "samesite=strict"))
    before = portal.cookies[CSRF_COOKIE]
    signed = await sign_in(portal, clock, email, totp)
    assert signed.status_code == 303 and signed.headers["location"] == "/portal/"
    cookies = {c.split("=", 1)[0]: c.lower() for c in signed.headers.get_list("set-cookie")}
    # __Host-: Secure, Path=/ and no Domain, or the browser keeps neither cookie
    assert set(cookies) == {SESSION_COOKIE, CSRF_COOKIE}
    for cookie in cookies.values():
        assert all(flag in cookie for flag in ("httponly", "secure", "samesite=strict",
                                               "path=/")) and "domain" not in cookie
    # the CSRF token is a new one from the sign-in on: one known before it is no use after
    assert portal.cookies[CSRF_COOKIE] != before
    assert signed.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    inbox = await portal.get("/portal/")
    assert inbox.status_code == 200 and ">Notifications</h1>" in inbox.text


async def test_posts_without_the_csrf_token_are_refused(
    engine: AsyncEngine, clock: Clock, portal: httpx.AsyncClient, settings: Settings
) -> None:
    school = await add_school(engine)
    email, totp = await new_dsl(settings, school)
    await portal.get("/portal/sign-in")
    form = {"email": email, "password": PASSWORD, "totp": totp.at(clock.now)}
    missing = await portal.post("/portal/sign-in", data=form)
    wrong = await portal.post("/portal/sign-in", data=form | {"csrf": "forged"})
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert "content-security-policy" in missing.headers
    assert SESSION_COOKIE not in portal.cookies
    assert (await sign_in(portal, clock, email, totp)).status_code == 303
    assert (await portal.post("/portal/sign-out", data={})).status_code == 403
    assert SESSION_COOKIE in portal.cookies


async def test_inbox_shows_only_own_school_and_reading_is_an_audited_disclosure(
    engine: AsyncEngine, notifier_deps: NotifierDeps, clock: Clock, portal: httpx.AsyncClient,
    settings: Settings,
) -> None:
    mine, theirs = await add_school(engine), await add_school(engine)
    own_incident, other_incident = uuid.uuid4(), uuid.uuid4()
    await on_child_matched(matched(own_incident, mine, "Zara"), deps=notifier_deps)
    await on_child_matched(matched(other_incident, theirs, "Tomi"), deps=notifier_deps)
    [own], [other] = await rows_for(engine, own_incident), await rows_for(engine, other_incident)
    email, totp = await new_dsl(settings, mine)
    await sign_in(portal, clock, email, totp)
    inbox = (await portal.get("/portal/")).text
    assert str(own.id) in inbox and str(other.id) not in inbox
    assert "Zara" not in inbox and "Okafor" not in inbox
    foreign = await portal.get(f"/portal/notifications/{other.id}")
    assert foreign.status_code == 404 and "Tomi" not in foreign.text
    assert (await portal.get("/portal/notifications/not-a-uuid")).status_code == 404
    page = await portal.get(f"/portal/notifications/{own.id}")
    assert page.status_code == 200 and "Zara Okafor" in page.text
    assert "Secret summary" not in page.text  # not in the force's disclosure profile
    assert "What has been done?" in page.text
    assert 'name="action" type="checkbox" value="early_help"' in page.text
    assert 'for="action-early_help">Early Help started (CAF)</label>' in page.text
    async with engine.connect() as conn:
        staged = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == settings.topic("notifier"),
            outbox.c.topic.like("%disclosures.v1")))).scalars().all()
    views = [v for v in staged if str(own.id).encode() in v and b"notification.view" in v]
    assert len(views) == 1 and b'"portal"' in views[0]
    assert not any(str(other.id).encode() in v for v in staged)


async def test_acknowledge_through_the_form_then_sign_out(
    engine: AsyncEngine, notifier_deps: NotifierDeps, clock: Clock, portal: httpx.AsyncClient,
    settings: Settings,
) -> None:
    school = await add_school(engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, school, "Zara"), deps=notifier_deps)
    [row] = await rows_for(engine, incident_id)
    email, totp = await new_dsl(settings, school)
    await sign_in(portal, clock, email, totp)
    page = await portal.get(f"/portal/notifications/{row.id}")
    url = f"/portal/notifications/{row.id}/acknowledge"
    bad = await portal.post(url, data={"csrf": csrf_of(page), "action": "tea",
                                       "attended": "no"})
    assert bad.status_code == 422
    today = clock.now.astimezone(LONDON).date().isoformat()
    ack = await portal.post(url, data={"csrf": csrf_of(page), "action": "school_nurse",
                                       "on-school_nurse": today, "attended": "no"})
    assert ack.status_code == 303 and ack.headers["location"] == "/portal/?acknowledged=1"
    assert "Acknowledgement recorded" in (await portal.get(ack.headers["location"])).text
    rows = {r.school_urn: r for r in await rows_for(engine, incident_id)}
    row = rows[school.urn]
    assert rows[None].recipient_role == "safeguarding"  # absent: the LA is told at once
    assert row.state == "acknowledged"
    assert row.action_taken == "attended this morning: no"
    again = await portal.post(url, data={"csrf": csrf_of(page), "action": "police_contact",
                                         "on-police_contact": today, "attended": "yes"})
    assert again.status_code == 409
    out = await portal.post("/portal/sign-out", data={"csrf": csrf_of(page)})
    assert out.status_code == 303 and SESSION_COOKIE not in portal.cookies
    assert (await portal.get("/portal/")).headers["location"] == "/portal/sign-in"


async def test_five_bad_sign_ins_then_429(
    engine: AsyncEngine, clock: Clock, portal: httpx.AsyncClient, settings: Settings
) -> None:
    school = await add_school(engine)
    email, totp = await new_dsl(settings, school)
    for _ in range(settings.login_max_failures):
        failed = await sign_in(portal, clock, email, totp, password="wrong password!")
        assert failed.status_code == 401 and "There is a problem" in failed.text
        assert "<title>Error: Sign in \u2013 Daybreak</title>" in failed.text
    throttled = await sign_in(portal, clock, email, totp)
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "60"


async def test_the_inbox_pages_counts_and_filters_in_peoples_words(
    engine: AsyncEngine, notifier_deps: NotifierDeps, clock: Clock, portal: httpx.AsyncClient,
    settings: Settings,
) -> None:
    school = await add_school(engine)
    ids = []
    for age in range(23):
        incident_id = uuid.uuid4()
        await on_child_matched(matched(incident_id, school, "Zara"), deps=notifier_deps)
        [row] = await rows_for(engine, incident_id)
        ids.append(row.id)
        async with engine.begin() as conn:  # one a day, the newest first in ids
            await conn.execute(update(notifications).where(notifications.c.id == row.id).values(
                created_at=clock.now - timedelta(days=age),
                **({"state": "acknowledged", "acknowledged_at": clock.now} if age % 5 == 4
                   else {})))
    email, totp = await new_dsl(settings, school)
    await sign_in(portal, clock, email, totp)

    def listed(text: str) -> list[str]:
        return re.findall(r'href="/portal/notifications/([0-9a-f-]{36})"', text)

    first = (await portal.get("/portal/")).text
    assert listed(first) == [str(i) for i in ids[:20]]  # newest first, a page of 20
    assert "Newest first: 1 to 20 of 23." in first and 'aria-label="Page 2"' in first
    assert ">New: 19</strong>" in first and ">Acknowledged: 4</strong>" in first
    assert f"{school.urn})" in first and "(URN " in first  # the school by name, URN beside
    assert '<time datetime="' in first and re.search(r"\w+day \d+ \w+ \d{4}, \d+:\d\d[ap]m",
                                                      first)
    second = await portal.get("/portal/?page=2")
    assert listed(second.text) == [str(i) for i in ids[20:]]
    assert "(page 2 of 2) \u2013 Daybreak</title>" in second.text
    done = (await portal.get("/portal/?state=acknowledged")).text
    assert listed(done) == [str(ids[i]) for i in (4, 9, 14, 19)]
    assert "1 to 4 of 4" in done and 'aria-label="Page 2"' not in done
    # the London days asked for: today and yesterday (the clock's)
    since = (clock.now - timedelta(days=1)).astimezone(LONDON).date().isoformat()
    recent = (await portal.get(f"/portal/?from={since}")).text
    assert set(listed(recent)) <= {str(i) for i in ids[:3]} and str(ids[0]) in recent
    wrong = await portal.get("/portal/?from=2026-02-31&state=lost")
    assert wrong.status_code == 200 and '<a href="#from">' in wrong.text
    assert '<a href="#state">' in wrong.text and "<title>Error: " in wrong.text
    page = (await portal.get(f"/portal/notifications/{ids[0]}")).text
    assert "Present at the incident" in page and ">Yes</dd>" in page
    assert '<time datetime="2026-11-22T18:00:00+00:00">Sunday 22 November 2026, 6:00pm</time>' \
        in page  # the incident's time, in London, in words and for machines
    assert f"(URN {school.urn})" in page
