"""Two of everything (forces, schools, LAs), each with real objects holding a canary child."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import httpx
import pyotp
from fastapi import FastAPI
from sqlalchemy import insert

from schemas.envelope import wrap
from schemas.incidents import ChildReport
from schemas.matching import ChildMatched, ChildUnmatched, IncidentFacts, SchoolMatch
from services.common.local_time import LONDON
from services.common.settings import Settings
from services.matcher.models import reviews
from services.notifier.handlers import on_child_matched, on_child_unmatched
from tests.support.api import new_police_client, new_user, police_token
from tests.support.ids import next_email
from tests.support.incidents import incident_body
from tests.support.notifier import School, add_school, rows_for

PASSWORD = "correct horse battery staple"
FORCE_A, FORCE_B = "WMP", "GMP"
# principal → (role, what it is tied to); "x"/"y" are schools, "1"/"2" local authorities
PRINCIPALS: dict[str, str] = {
    "police_a": "police", "police_b": "police", "dsl_x": "dsl", "deputy_x": "deputy_dsl",
    "dsl_y": "dsl", "la_1": "la_officer", "la_2": "la_officer", "auditor": "auditor",
    "admin": "admin", "partnership": "partnership",
}


@dataclass(frozen=True)
class Canary:
    """A child whose name and birth date must never reach anyone not entitled to them."""

    given: str
    family: str
    born: date

    def report(self) -> ChildReport:
        """The child as police report them."""
        return ChildReport(given_name=self.given, family_name=self.family,
                           date_of_birth=self.born, voice_of_child=f"{self.given} was scared")

    def marks(self) -> list[bytes]:
        """What must not appear in a response the caller is not entitled to."""
        return [self.given.encode(), self.family.encode(), self.born.isoformat().encode()]


def new_canary(tag: str) -> Canary:
    """A child with unmistakable names and a random birth date."""
    day = 1 + secrets.randbelow(28)
    return Canary(f"Qz{tag}{secrets.token_hex(3)}ella", f"Vw{tag}{secrets.token_hex(3)}holt",
                  date(2013, 1 + secrets.randbelow(12), day))


@dataclass
class World:
    """The running services, the principals' tokens and the real objects they fight over."""

    settings: Settings
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    tokens: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    canaries: dict[str, Canary] = field(default_factory=dict)

    def bearer(self, principal: str) -> dict[str, str]:
        """The principal's Authorization header."""
        return {"Authorization": f"Bearer {self.tokens[principal]}"}

    def marks(self, *owners: str) -> list[bytes]:
        """The canary bytes of the named objects (all of them when none is named)."""
        return [m for key, c in self.canaries.items() if not owners or key in owners
                for m in c.marks()]


async def sign_in(client: httpx.AsyncClient, settings: Settings, role: str,
                  schools: list[str], las: list[str]) -> str:
    """Create a person and sign them in through `POST /v1/sessions`; their bearer token."""
    email = next_email(role, "security.test")
    _, totp = await new_user(settings, email=email, password=PASSWORD, role=role,
                             school_urns=schools, la_codes=las)
    resp = await client.post("/v1/sessions", json={
        "email": email, "password": PASSWORD, "totp": pyotp.TOTP(totp).now()})
    assert resp.status_code == 200, resp.text
    client.cookies.clear()  # the session cookie must not ride along on later requests
    token: str = resp.json()["access_token"]
    return token


def _facts(incident_id: uuid.UUID, force: str) -> IncidentFacts:
    return IncidentFacts(incident_id=incident_id, force_code=force,
                         occurred_at=datetime.now(UTC), incident_type="domestic_abuse",
                         summary="Canary summary", disclosure_fields=["occurred_at"])


async def notify_school(world: World, school: School, key: str) -> str:
    """A notification to the school about a new canary child; its id."""
    canary = world.canaries[key] = new_canary(key)
    incident_id = uuid.uuid4()
    envelope = wrap(ChildMatched(
        child_id=uuid.uuid5(incident_id, "0"), child_index=0, incident=_facts(incident_id, "WMP"),
        child=canary.report(), decided_by="engine", matched_at=datetime.now(UTC),
        schools=[SchoolMatch(urn=school.urn, la_code=school.la, score=30)]))
    await on_child_matched(envelope, deps=world.apps["notifier"].state.ctx.deps)
    return await _notification_of(world, incident_id)


async def notify_la(world: World, la_code: str, key: str) -> str:
    """A notification to the LA about a canary child on no roll; its id."""
    canary = world.canaries[key] = new_canary(key)
    incident_id = uuid.uuid4()
    envelope = wrap(ChildUnmatched(
        child_id=uuid.uuid5(incident_id, "0"), child_index=0, incident=_facts(incident_id, "WMP"),
        child=canary.report(), la_code=la_code, reason="not_on_roll", decided_by="engine",
        decided_at=datetime.now(UTC)))
    await on_child_unmatched(envelope, deps=world.apps["notifier"].state.ctx.deps)
    return await _notification_of(world, incident_id)


async def _notification_of(world: World, incident_id: uuid.UUID) -> str:
    [row] = await rows_for(world.apps["notifier"].state.ctx.engine, incident_id)
    return str(row.id)


async def queue_review(world: World, la_code: str, key: str) -> str:
    """An open review in the LA's queue about a canary child; its id."""
    canary = world.canaries[key] = new_canary(key)
    review_id, incident_id = uuid.uuid4(), uuid.uuid4()
    async with world.apps["matcher"].state.ctx.engine.begin() as conn:
        await conn.execute(insert(reviews).values(
            review_id=review_id, incident_id=incident_id, child_index=0,
            child_id=uuid.uuid5(incident_id, "0"), la_code=la_code,
            child=canary.report().model_dump(mode="json"),
            incident=_facts(incident_id, "WMP").model_dump(mode="json"),
            candidates=[], reason="two pupils score alike", created_at=datetime.now(UTC)))
    return str(review_id)


async def report_incident(world: World, police: str, force: str, key: str) -> str:
    """An incident reported by the force's own client through the API; its id."""
    canary = world.canaries[key] = new_canary(key)
    body = incident_body(force)
    body["children"][0].update(given_name=canary.given, family_name=canary.family,
                               date_of_birth=canary.born.isoformat())
    resp = await world.clients["ingest"].post("/v1/incidents", json=body,
                                              headers=world.bearer(police))
    assert resp.status_code == 202, resp.text
    incident_id: str = resp.json()["incident_id"]
    return incident_id


async def populate(world: World) -> None:
    """Principals, then two of every tenant-owned object, then the path parameters."""
    ingest, engine = world.clients["ingest"], world.apps["notifier"].state.ctx.engine
    x, y = await add_school(engine), await add_school(engine)
    tied: dict[str, tuple[list[str], list[str]]] = {
        "dsl_x": ([x.urn], []), "deputy_x": ([x.urn], []), "dsl_y": ([y.urn], []),
        "la_1": ([], [x.la]), "la_2": ([], [y.la]), "auditor": ([], []), "admin": ([], []),
        "partnership": ([], [x.la])}
    for name, (schools, las) in tied.items():
        world.tokens[name] = await sign_in(ingest, world.settings, PRINCIPALS[name], schools, las)
    for name, force, la in (("police_a", FORCE_A, x.la), ("police_b", FORCE_B, y.la)):
        world.tokens[name] = await police_token(ingest, *await new_police_client(
            world.settings, force, default_la=la))
    await _put_force(world, x.la)
    for school in (x, y):
        await _register(world, school)
    world.params.update(
        incident_id=await report_incident(world, "police_a", FORCE_A, "incident_a"),
        incident_b=await report_incident(world, "police_b", FORCE_B, "incident_b"),
        force_code=FORCE_A, la_code=x.la, urn=x.urn, la_2=y.la, urn_y=y.urn,
        notification_id=await notify_school(world, x, "notification_x"),
        notification_y=await notify_school(world, y, "notification_y"),
        notification_la1=await notify_la(world, x.la, "notification_la1"),
        notification_la2=await notify_la(world, y.la, "notification_la2"),
        review_id=await queue_review(world, x.la, "review_1"),
        review_2=await queue_review(world, y.la, "review_2"),
        token=secrets.token_urlsafe(16), name="portal.css",
        today=datetime.now(LONDON).date().isoformat())
    seen = world.canaries["notification_x"]
    world.params.update(given=seen.given, family=seen.family, born=seen.born.isoformat())
    world.params.update(born_day=str(seen.born.day), born_month=str(seen.born.month),
                        born_year=str(seen.born.year))
    world.params.update(await _audit_objects(world))
    world.params.update(child_index="0")
    world.params.update(await spare_accounts(world))
    world.params.update(sid="others")  # the portal's own-sessions pages: "everywhere else"


async def _register(world: World, school: School) -> None:
    """The school and its LA in the matcher's registry too, as an admin puts them."""
    matcher, admin = world.clients["matcher"], world.bearer("admin")
    resp = await matcher.put(f"/v1/local-authorities/{school.la}", headers=admin, json={
        "name": f"LA {school.la}",
        "contacts": [{"role": "safeguarding", "name": "S", "email": school.la_contact}]})
    assert resp.status_code in (200, 201), resp.text
    resp = await matcher.put(f"/v1/schools/{school.urn}", headers=admin, json={
        "name": f"School {school.urn}", "la_code": school.la, "participates": True,
        "day_starts_at": "08:45",
        "contacts": [{"role": "dsl", "name": "D", "email": school.dsl},
                     {"role": "deputy_dsl", "name": "E", "email": school.deputy}]})
    assert resp.status_code in (200, 201), resp.text


async def _put_force(world: World, default_la: str) -> None:
    resp = await world.clients["ingest"].put(
        f"/v1/forces/{FORCE_A}", headers=world.bearer("admin"),
        json={"name": "West Midlands Police", "disclosure_profile": {"fields": ["summary"]},
              "default_la_code": default_la})
    assert resp.status_code in (200, 201), resp.text


async def _audit_objects(world: World) -> dict[str, str]:
    """A real audit event and a real signed tree head size (an auditor's reads make both)."""
    audit, auditor = world.clients["audit"], world.bearer("auditor")
    await audit.get("/v1/audit/events", headers=auditor)
    events = (await audit.get("/v1/audit/events", headers=auditor)).json()["events"]
    event_id = events[0]["id"]
    proof = await audit.get(f"/v1/audit/events/{event_id}/proof", headers=auditor)
    assert proof.status_code == 200, proof.text
    return {"event_id": event_id, "tree_size": str(proof.json()["tree_size"])}



async def spare_accounts(world: World) -> dict[str, str]:
    """A person and a police client no principal uses, for the admin API's probes to change."""
    user_id, _ = await new_user(world.settings, email=next_email("spare", "security.test"),
                                password=PASSWORD, role="auditor", school_urns=[],
                                la_codes=[])
    client_id, _ = await new_police_client(world.settings, FORCE_B, default_la=None)
    return {"user_id": user_id, "client_id": client_id}
