"""`daybreak demo`: the morning's work end to end against the running services, demo data only.

An admin registers a local authority and its term dates (an iCalendar file), two schools and
their rolls, and the police force with the LA as its default (each with the contacts
`daybreak doctor` asks for: `make up` runs it next); a police client reports two incidents;
the matcher resolves one child to her school and queues an ambiguous one for the LA, whose
review contact is e-mailed; the LA officer signs in to the portal, compares the candidates
(audited disclosures) and resolves it with a reason.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import secrets
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pyotp
from aiokafka import AIOKafkaConsumer
from stdnum.gb import upn as upn_check

from schemas import topics
from services.common.db import standalone_uow
from services.common.kafka import partitions_of
from services.common.local_time import LONDON
from services.common.school_calendar import SchoolCalendar
from services.common.settings import Settings
from services.identity.accounts import create_client, create_user
from services.identity.totp_vault import totp_vault
from services.notifier.channels import spoken_time
from services.notifier.scheduling import schedule_push

INGEST, MATCHER = "http://127.0.0.1:8001", "http://127.0.0.1:8002"
NOTIFIER, AUDIT = "http://127.0.0.1:8003", "http://127.0.0.1:8004"
MAILBOX = Path(".daybreak/mail")
LA = "332"
FORCE = "WMP"
OAK, ELM = "103456", "103457"
SCHOOLS = ((OAK, "Oak Road Primary", "DY1 2AB"), (ELM, "Elm Academy", "DY2 9ZZ"))
TERM_DATES = "la-332-term-dates.ics"


def demo_upn(digits: str) -> str:
    """A valid UPN (check letter + 12 digits) for made-up pupils."""
    return upn_check.calc_check_digit(digits) + digits


ROSTER_HEADER = ("urn,upn,given_name,preferred_name,family_name,former_family_name,"
                 "date_of_birth,gender,address_line1,postcode,enrolment_status,on_roll_from,"
                 "on_roll_to")
ROLLS = {
    OAK: [f"{OAK},{demo_upn('332103456001')},Amelia,,Khan,,2016-03-02,F,12 Oak Road,DY1 2AB,C,,",
          f"{OAK},{demo_upn('332103456002')},Oliver,,Smith,,2017-05-05,M,1 High Street,DY1 3BD,C,,",
          f"{OAK},{demo_upn('332103456003')},Noah,,Patel,,2015-10-11,M,4 Birch Close,DY1 4EF,C,,"],
    ELM: [f"{ELM},{demo_upn('332103457001')},Oliver,,Smith,,2017-05-05,M,99 Low Road,DY2 9ZZ,C,,",
          f"{ELM},{demo_upn('332103457002')},Isla,,Jones,,2014-01-30,F,7 Ash Grove,DY2 8XY,C,,"],
}


def demo_incident(force: str, now: datetime, **child: Any) -> dict[str, Any]:
    """A made-up incident with one child and a fresh reference."""
    base = {"given_name": "Amelia", "family_name": "Khan", "date_of_birth": "2016-03-02",
            "gender": "F", "address": {"line1": "12 Oak Road", "town": "Dudley",
                                       "postcode": "DY1 2AB"},
            "school_hint": {"urn": OAK, "name": "Oak Road Primary"},
            "present_at_incident": True}
    base.update(child)
    return {
        "force_code": force,
        "incident_reference": f"{force}-DEMO-{secrets.token_hex(4).upper()}",
        "occurred_at": (now - timedelta(hours=1)).isoformat(),
        "incident_type": "domestic_abuse",
        "summary": "Verbal argument between adults; child present in the home.",
        "children": [{k: v for k, v in base.items() if v is not None}],
    }


async def _account(settings: Settings, role: str, **kw: Any
                   ) -> tuple[str, str, pyotp.TOTP]:
    """Create a person: their e-mail, password and authenticator."""
    email = f"demo-{role}-{secrets.token_hex(3)}@example.org"
    password = secrets.token_urlsafe(18)
    async with standalone_uow(settings, "identity") as uow:
        user = await create_user(uow.conn, vault=totp_vault(settings), email=email,
                                 password=password, role=role,
                                 school_urns=kw.get("schools", []), la_codes=kw.get("las", []))
        await uow.commit()
    return email, password, pyotp.TOTP(pyotp.parse_uri(user.totp_uri).secret)


async def _person(settings: Settings, role: str, **kw: Any) -> dict[str, str]:
    """Create a person and sign them in with password + TOTP; returns a bearer header."""
    email, password, totp = await _account(settings, role, **kw)
    code = totp.now()
    async with httpx.AsyncClient(base_url=MATCHER, timeout=15) as http:
        resp = await http.post("/v1/sessions", json={"email": email, "password": password,
                                                     "totp": code})
        resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def _police(settings: Settings) -> dict[str, str]:
    async with standalone_uow(settings, "identity") as uow:
        client = await create_client(uow.conn, force_code=FORCE)
        await uow.commit()
    async with httpx.AsyncClient(base_url=INGEST, timeout=15) as http:
        token = (await http.post("/v1/token", data={"grant_type": "client_credentials"},
                                 auth=(client.client_id, client.client_secret))).json()
    print(f"   police client {client.client_id}: token scope {token['scope']}, "
          f"{token['expires_in']} s")
    return {"Authorization": f"Bearer {token['access_token']}"}


def la_body() -> dict[str, Any]:
    """The demo LA: who is told of a child on no roll, of a review, and when nobody acts."""
    return {"name": "Dudley", "contacts": [
        {"role": "safeguarding", "name": "LADO desk", "email": "lado@la.example"},
        {"role": "review", "name": "Encompass team", "email": "encompass@la.example"},
        {"role": "duty_manager", "name": "Duty manager", "email": "duty@la.example"}]}


def school_body(urn: str, name: str, postcode: str) -> dict[str, Any]:
    """A demo school taking part, with a DSL, the deputy told when the DSL has not acted, and
    the person who covers the holidays."""
    return {"name": name, "la_code": LA, "postcode": postcode, "participates": True,
            "day_starts_at": "08:45", "webhook": None,
            "contacts": [{"role": "dsl", "name": "Key Adult",
                          "email": f"dsl@{urn}.school.example"},
                         {"role": "deputy_dsl", "name": "Deputy Key Adult",
                          "email": f"deputy@{urn}.school.example"},
                         {"role": "holiday_cover", "name": "Holiday Cover",
                          "email": f"cover@{urn}.school.example"}]}


def term_dates() -> bytes:
    """The demo LA's published term dates (made up: three academic years from September 2026,
    terms, half terms, the Christmas, Easter and summer holidays, INSET days)."""
    return (resources.files("services") / "demo_data" / TERM_DATES).read_bytes()


def christmas_eve_line(days: list[dict[str, str]], today: date) -> str:
    """What the calendar does to a child matched on the coming Christmas Eve at 8pm."""
    eve = date(today.year if today <= date(today.year, 12, 24) else today.year + 1, 12, 24)
    matched_at = datetime.combine(eve, time(20), tzinfo=LONDON)
    calendar = SchoolCalendar.from_overrides(
        (date.fromisoformat(d["day"]), "open" if d["kind"] == "open" else "closed")
        for d in days)
    plan = schedule_push(matched_at, calendar=calendar, day_starts_at=time(8, 45),
                         has_holiday_cover=True)
    back = plan.dsl_return_at or plan.push_at
    return (f"a child matched on Christmas Eve at 8pm reaches the holiday cover and the LA on "
            f"{spoken_time(plan.push_at)}, and the DSL on the first day back, "
            f"{spoken_time(back)}")


def force_body() -> dict[str, Any]:
    """The demo force: a child whose LA the report does not tell goes to the demo LA."""
    return {"name": "West Midlands Police",
            "disclosure_profile": {"fields": ["occurred_at", "incident_type",
                                              "present_at_incident"]},
            "default_la_code": LA}


async def register(matcher: httpx.AsyncClient, ingest: httpx.AsyncClient,
                   admin: dict[str, str]) -> None:
    """The demo's LA, schools, rolls and force, through the admin APIs."""
    (await matcher.put(f"/v1/local-authorities/{LA}", headers=admin,
                       json=la_body())).raise_for_status()
    for urn, name, postcode in SCHOOLS:
        (await matcher.put(f"/v1/schools/{urn}", headers=admin,
                           json=school_body(urn, name, postcode))).raise_for_status()
        roll = "\n".join([ROSTER_HEADER, *ROLLS[urn]]) + "\n"
        resp = await matcher.post(f"/v1/schools/{urn}/roster", content=roll.encode(),
                                  headers={**admin, "Content-Type": "text/csv"})
        resp.raise_for_status()
        print(f"   {name} ({urn}): roll of {resp.json()['rows']} pupils imported")
    resp = await matcher.put(f"/v1/local-authorities/{LA}/calendar", content=term_dates(),
                             headers={**admin, "Content-Type": "text/calendar"})
    resp.raise_for_status()
    imported = resp.json()
    calendar = await matcher.get(f"/v1/schools/{OAK}/calendar", headers=admin)
    calendar.raise_for_status()
    print(f"   LA {LA} term dates ({TERM_DATES}): {imported['days']} closed days for "
          f"{imported['schools_affected']} schools; "
          f"{christmas_eve_line(calendar.json()['days'], datetime.now(UTC).date())}")
    (await ingest.put(f"/v1/forces/{FORCE}", headers=admin,
                      json=force_body())).raise_for_status()
    print(f"   force {FORCE}: children whose LA the report does not tell go to LA {LA}")


async def run_demo(settings: Settings) -> int:
    """Walk the morning through the real APIs and Kafka topics."""
    print(f"1. admin signs in (password + TOTP) and registers LA {LA}, two schools, their "
          f"rolls and force {FORCE}")
    admin = await _person(settings, "admin")
    async with httpx.AsyncClient(base_url=MATCHER, timeout=60) as matcher, \
            httpx.AsyncClient(base_url=INGEST, timeout=15) as ingest:
        await register(matcher, ingest, admin)
    print(f"2. police client {FORCE} gets an OAuth2 token")
    police = await _police(settings)
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=INGEST, timeout=15) as http:
        first = demo_incident(FORCE, now, family_name="Kahn")  # a typo the matcher survives
        resp = await http.post("/v1/incidents", json=first, headers=police)
        again = await http.post("/v1/incidents", json=first, headers=police)
        print(f"3. incident posted -> {resp.status_code} {resp.json()}; "
              f"retried -> {again.status_code} (same id: "
              f"{again.json()['incident_id'] == resp.json()['incident_id']})")
        second = demo_incident(FORCE, now, given_name="Oliver", family_name="Smith",
                               date_of_birth="2017-05-05", gender="M", address=None,
                               school_hint=None)
        ambiguous = await http.post("/v1/incidents", json=second, headers=police)
        print(f"4. incident with an ambiguous child posted -> {ambiguous.status_code}")
    matched = await _await_event(settings, topics.MATCHES, resp.json()["incident_id"])
    schools = ", ".join(s["urn"] for s in matched["payload"]["schools"])
    print(f"5. matches.v1: {matched['type']} -> school {schools} "
          f"(decided by {matched['payload']['decided_by']})")
    queued = await _await_event(settings, topics.REVIEWS, ambiguous.json()["incident_id"])
    review_id = queued["payload"]["review_id"]
    print(f"6. reviews.v1: {queued['type']} for LA {queued['payload']['la_code']} "
          f"({queued['payload']['candidates']} candidates)")
    alert = await _await_mail(MAILBOX, "encompass@la.example")
    print(f"7. the LA's review contact is e-mailed (no child data; the deadline is the "
          f"earliest school-day start among the candidates): {alert or 'not yet sent'}")
    await _la_officer_resolves_in_portal(settings, review_id)
    resolved = await _await_event(settings, topics.MATCHES, ambiguous.json()["incident_id"])
    print(f"   matches.v1: {resolved['type']} (decided by {resolved['payload']['decided_by']})")
    await _dsl(settings)
    await _receipts(police, [resp.json()["incident_id"], ambiguous.json()["incident_id"]])
    await _partnership(settings)
    await _audit(settings)
    print(f"See the APIs at {INGEST}/docs, {MATCHER}/docs and {AUDIT}/docs; "
          "logs in .daybreak/logs/")
    return 0


async def _la_officer_resolves_in_portal(settings: Settings, review_id: str) -> None:
    """The LA officer signs in to the portal (password + TOTP), works the review queue,
    compares the candidates side by side and resolves to one with a reason."""
    email, password, totp = await _account(settings, "la_officer", las=[LA])
    async with httpx.AsyncClient(base_url=NOTIFIER, timeout=30) as http:
        portal = _Browser(http)
        signed_in = await portal.submit("/portal/sign-in", "/portal/sign-in", {
            "email": email, "password": password, "totp": totp.now()})
        queue = await portal.get("/portal/reviews")
        waiting = queue.text.count('href="/portal/reviews/')
        print(f"8. LA officer signs in to {NOTIFIER}/portal/ ({signed_in.status_code} "
              f"-> {signed_in.headers.get('location')}); review queue: {waiting} waiting, "
              "each with a countdown to its deadline")
        page = await portal.get(f"/portal/reviews/{review_id}")
        choice = re.search(r'name="choice" type="radio" value="(school:[^"]+)"', page.text)
        if choice is None:
            raise DemoTimeout(f"the review page did not offer a candidate ({page.status_code})")
        done = await portal.submit(f"/portal/reviews/{review_id}",
                                   f"/portal/reviews/{review_id}/resolve", {
                                       "choice": choice.group(1),
                                       "reason": "Same date of birth; the address matches the "
                                                 "school's record"})
        print(f"   opened the review (the matcher audits the child and each candidate shown), "
              f"resolved to school {choice.group(1).split(':')[1]} with a reason -> "
              f"{done.status_code} {done.headers.get('location')}")


class _Browser:
    """A portal visitor: keeps the cookies a browser would (the session cookie is Secure,
    which httpx would not send back over plain http to 127.0.0.1; browsers do)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.cookies: dict[str, str] = {}

    async def get(self, path: str) -> httpx.Response:
        return self._keep(await self.http.get(path, headers=self._headers()))

    async def submit(self, form_path: str, action: str, fields: dict[str, str]
                     ) -> httpx.Response:
        page = await self.get(form_path)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        if csrf is None:
            raise DemoTimeout(f"no form at {form_path} ({page.status_code})")
        return self._keep(await self.http.post(action, data={"csrf": csrf.group(1), **fields},
                                               headers=self._headers()))

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _keep(self, response: httpx.Response) -> httpx.Response:
        self.cookies.update(response.cookies.items())
        return response


async def _dsl(settings: Settings) -> None:
    """Oak Road's DSL sees the notification at once; the push waits for the morning window."""
    dsl = await _person(settings, "dsl", schools=[OAK])
    async with httpx.AsyncClient(base_url=NOTIFIER, timeout=15) as http:
        items: list[dict[str, Any]] = []
        for _ in range(60):
            items = (await http.get("/v1/notifications", headers=dsl)).json()["items"]
            if items:
                break
            await asyncio.sleep(0.5)
        if not items:
            print("9. DSL: no notification yet")
            return
        newest = max(items, key=lambda n: n["created_at"])
        print(f"9. Oak Road's DSL has {len(items)} notification(s); the newest is "
              f"{newest['state']}, e-mail push at {newest['push_at']} (mail: .daybreak/mail/new/)")
        detail = await http.get(f"/v1/notifications/{newest['id']}", headers=dsl)
        shown = detail.json().get("children", [])
        print(f"   opened it (an audited disclosure): {len(shown)} child(ren)")
        ack = await http.post(f"/v1/notifications/{newest['id']}/acknowledge", headers=dsl,
                              json={"action_taken": "pastoral support", "attended": False})
        print(f"   acknowledged (pastoral support; the child did not attend) -> "
              f"{ack.status_code} {ack.json().get('state')}; the LA is told at once")
    mail = await _await_mail(MAILBOX, "lado@la.example")
    print(f"   e-mail to the LA safeguarding contact (no child data in it): {mail}"
          if mail else "   the LA's e-mail has not been sent yet (see .daybreak/mail/new/)")


async def _receipts(police: dict[str, str], incident_ids: list[str],
                    timeout_s: float = 20) -> None:
    """The force reads its receipts: each child's outcome and, per school, when it was pushed,
    viewed and acknowledged (waiting a while for the notifier's events to reach ingest)."""
    receipts: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=INGEST, timeout=15) as http:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            receipts = [(await http.get(f"/v1/incidents/{i}", headers=police)).json()
                        for i in incident_ids]
            if all(_told(r) for r in receipts) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
    print("10. police read their receipts (GET /v1/incidents/{id}, no phone call):")
    for receipt in receipts:
        outcomes = ", ".join(f"child {c['child_index']}: {c['outcome'] or 'being matched'}"
                             for c in receipt["children"])
        print(f"   {receipt['incident_reference']}: {outcomes}")
        for n in receipt["notifications"]:
            print(f"     {_desk(n)}: {_when('pushed', n['pushed_at'])}, "
                  f"{_when('viewed', n['first_viewed_at'])}, "
                  f"{_when('acknowledged', n['acknowledged_at'])}")
        if not receipt["notifications"]:
            print("     no notification reported yet")


def _told(receipt: dict[str, Any]) -> bool:
    """Every child decided, and every notification seen and acknowledged."""
    notes = receipt.get("notifications", [])
    return bool(notes) and all(c["outcome"] for c in receipt["children"]) and all(
        n["first_viewed_at"] and n["acknowledged_at"] for n in notes)


def _desk(notification: dict[str, Any]) -> str:
    urn = notification["school_urn"]
    return f"school {urn}" if urn else f"LA {notification['la_code']}"


def _when(what: str, at: str | None) -> str:
    return f"{what} {spoken_time(datetime.fromisoformat(at))}" if at else f"not yet {what}"


async def _await_mail(mailbox: Path, recipient: str, seconds: float = 20) -> str | None:
    """The newest message for `recipient` that the local SMTP server wrote to its mailbox."""
    started = datetime.now(UTC).timestamp()
    for _ in range(int(seconds * 2)):
        new = mailbox / "new"
        found = [p for p in new.glob("*") if p.stat().st_mtime >= started - 1
                 and recipient in p.read_text(errors="replace")] if new.exists() else []
        if found:
            return str(max(found, key=lambda p: p.stat().st_mtime))
        await asyncio.sleep(0.5)
    return None


async def _partnership(settings: Settings) -> None:
    """The local Safeguarding Children Partnership reads this week's figures for the LA: a
    read model of notifications.v1, no child data, counts under 5 suppressed."""
    email, password, totp = await _account(settings, "partnership", las=[LA])
    async with httpx.AsyncClient(base_url=NOTIFIER, timeout=30) as http:
        portal = _Browser(http)
        await portal.submit("/portal/sign-in", "/portal/sign-in", {
            "email": email, "password": password, "totp": totp.now()})
        week = datetime.now(LONDON).strftime("%G-W%V")
        rows: list[dict[str, str]] = []
        for _ in range(40):  # the figures' consumer follows notifications.v1 a moment behind
            answer = await portal.get(f"/portal/partnership.csv?from={week}&to={week}")
            rows = [r for r in csv.DictReader(io.StringIO(answer.text)) if r.get("force_code")
                    == FORCE] if answer.status_code == 200 else []
            if rows and rows[0]["notifications"] != "0":
                break
            await asyncio.sleep(0.5)
    if not rows:
        print("11. the partnership's figures: nothing for this week yet")
        return
    row = rows[0]
    print(f"11. the partnership's figures for LA {LA}, force {FORCE}, week {week} "
          f"({NOTIFIER}/portal/partnership, charts and CSV): notifications "
          f"{row['notifications']}, routed to the LA {row['children_routed_to_la']}, reviews "
          f"opened {row['reviews_opened']} ([c]: fewer than 5, suppressed as official "
          "statistics are)")


async def _audit(settings: Settings) -> None:
    """An auditor asks who has seen anything about the reviewed child, and checks the log."""
    auditor = await _person(settings, "auditor")
    subject = {"given_name": "Oliver", "family_name": "Smith", "date_of_birth": "2017-05-05"}
    async with httpx.AsyncClient(base_url=AUDIT, timeout=15) as http:
        for _ in range(60):
            found = (await http.post("/v1/audit/subject-access", json=subject,
                                     headers=auditor)).json()
            views = [e for e in found["events"] if e["action"] == "review.view"]
            if views:
                break
            await asyncio.sleep(0.5)
        print(f"12. auditor's subject-access request: {len(views)} review view(s) of that child, "
              f"by {views[-1]['actor_role']} {views[-1]['actor']} via {views[-1]['channel']}"
              if views else "12. auditor: the disclosure has not reached the audit log yet")
        check = (await http.get("/v1/audit/verify", headers=auditor)).json()
        print(f"   audit log verified: ok={check['ok']}, {check['events']} events, "
              f"head {str(check['head'])[:16]}...")


async def _await_event(settings: Settings, topic: str, incident_id: str,
                       timeout_s: float = 60) -> dict[str, Any]:
    """The newest event on a topic keyed by the incident, waiting for it to arrive."""
    consumer = AIOKafkaConsumer(**settings.kafka().client_options(),
                                isolation_level="read_committed")
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            tps = await partitions_of(consumer, [settings.topic(topic)])
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                consumer.seek(tp, max(0, ends[tp] - 200))
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            found = [r for records in batch.values() for r in records
                     if r.key and r.key.decode() == incident_id]
            if found:
                latest = max(found, key=lambda r: r.timestamp)
                event: dict[str, Any] = json.loads(latest.value)
                return event
            await asyncio.sleep(0.5)
        raise DemoTimeout(
            f"no event on {settings.topic(topic)} for the demo incident within {timeout_s:.0f} s;"
            " if the consumers are still draining older incidents, watch daybreak_consumer_lag"
            f" on {MATCHER}/metrics and {NOTIFIER}/metrics (with DAYBREAK_METRICS_TOKEN as the"
            " bearer token), then run `daybreak demo` again")
    finally:
        await consumer.stop()


class DemoTimeout(TimeoutError):
    """An expected event did not arrive in time; its message names the topic, never data."""


def main(settings: Settings) -> int:
    """Run the demo."""
    return asyncio.run(run_demo(settings))
