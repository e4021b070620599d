"""SQL and template injection in every text field of an incident: kept verbatim on its way
through ingest and Kafka to the notifier, and shown escaped in the DSL portal."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import wrap
from schemas.incidents import DISCLOSABLE_FIELDS, IncidentReceived
from schemas.matching import ChildMatched, SchoolMatch
from services.common.db import make_engine
from services.common.sealing import ChildSealing, with_sealing
from services.common.settings import Settings
from services.ingest.models import incidents
from services.matcher.decisions import incident_facts
from services.notifier.handlers import NotifierDeps, on_child_matched
from tests.support.api import new_police_client, police_token
from tests.support.clock import Clock
from tests.support.hostile import PAYLOADS
from tests.support.ids import next_force
from tests.support.incidents import DEFAULT_LA, incident_body, incidents_on_topic
from tests.support.keys import Keystore
from tests.support.notifier import School, add_school, rows_for
from tests.support.portal import new_dsl, sign_in
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
SHOWN = ("given_name", "family_name", "voice_of_child")


def hostile_incident(force: str, payload: str) -> dict[str, Any]:
    """An incident whose every free-text field is the payload (the postcode holds ten)."""
    body = incident_body(force, summary=payload)
    body["children"][0].update(
        given_name=payload, family_name=payload, voice_of_child=payload,
        address={"line1": payload, "line2": payload, "town": payload,
                 "postcode": payload[:10].strip()},
        school_hint={"urn": "103456", "name": payload})
    return body


def texts(incident: dict[str, Any]) -> list[str]:
    """Every free-text value of an incident, in a fixed order."""
    child = incident["children"][0]
    return [incident["summary"], *(child[k] for k in SHOWN),
            *child["address"].values(), child["school_hint"]["name"]]


@pytest.fixture
async def engine(database: dict[str, str], session_keystore: Keystore
                 ) -> AsyncIterator[AsyncEngine]:
    """The owner: this test reads what ingest stored and what the notifier made of it (with
    the session's keystore, to open what the notifier sealed)."""
    engine = make_engine(database["owner_url"], pool_size=2)
    yield with_sealing(engine, ChildSealing(None, keyring=session_keystore.keyring()))
    await engine.dispose()


async def report_every_payload(ingest: httpx.AsyncClient,
                               settings: Settings) -> tuple[str, dict[str, dict[str, Any]]]:
    """A force that discloses everything (its name a payload) reports one incident per payload."""
    force = next_force("HX")
    police = {"Authorization": "Bearer " + await police_token(
        ingest, *await new_police_client(settings, force, default_la=None))}
    profile = {"name": PAYLOADS[0], "disclosure_profile": {"fields": list(DISCLOSABLE_FIELDS)},
               "default_la_code": DEFAULT_LA}
    admin = bearer(person("admin"))
    assert (await ingest.put(f"/v1/forces/{force}", json=profile,
                             headers=admin)).status_code == 201
    sent = {}
    for payload in PAYLOADS:
        body = hostile_incident(force, payload)
        response = await ingest.post("/v1/incidents", json=body, headers=police)
        assert response.status_code == 202, (payload, response.text)
        sent[response.json()["incident_id"]] = body
    return force, sent


async def notify(deps: NotifierDeps, clock: Clock, school: School,
                 event: IncidentReceived) -> None:
    """The notifier's own handler, fed the child exactly as ingest published it."""
    await on_child_matched(wrap(ChildMatched(
        child_id=uuid.uuid5(event.incident_id, "0"), child_index=0,
        incident=incident_facts(event), child=event.incident.children[0], decided_by="engine",
        schools=[SchoolMatch(urn=school.urn, la_code=school.la, score=30)],
        matched_at=clock.now)), deps=deps)


async def test_injection_strings_are_kept_verbatim_and_shown_escaped(
    ingest: httpx.AsyncClient, settings: Settings, engine: AsyncEngine,
    notifier_deps: NotifierDeps, clock: Clock, portal: httpx.AsyncClient,
) -> None:
    force, sent = await report_every_payload(ingest, settings)
    events = await incidents_on_topic(settings, at_least=len(PAYLOADS))
    received = [IncidentReceived.model_validate(event["payload"]) for event in events]
    for event in received:  # every text arrives exactly as sent, the profile applied
        assert texts(event.incident.model_dump()) == texts(sent[str(event.incident_id)])
        assert set(event.disclosure_fields) == set(DISCLOSABLE_FIELDS)
    async with engine.connect() as conn:  # nothing was executed: the tables are all there
        kept = select(func.count()).where(incidents.c.incident_id.in_(map(uuid.UUID, sent)))
        assert await conn.scalar(kept) == len(PAYLOADS)
        assert await conn.scalar(text("SELECT name FROM ingest.forces WHERE force_code = :force"),
                                 {"force": force}) == PAYLOADS[0]
    school = await add_school(engine)
    for event in received:
        await notify(notifier_deps, clock, school, event)
    email, totp = await new_dsl(settings, school)
    assert (await sign_in(portal, clock, email, totp)).status_code == 303
    for event in received:
        [row] = await rows_for(engine, event.incident_id)
        page = await portal.get(f"/portal/notifications/{row.id}")
        assert page.status_code == 200
        assert_escaped(page.text, event.incident.summary or "")


def assert_escaped(page: str, payload: str) -> None:
    """The payload is on the page as text: escaped, never markup, never evaluated."""
    # the portal's one script is its own module, same-origin, under the page's nonce
    own = re.sub(r'<script type="module" src="/portal/static/portal\.mjs" nonce="[^"]+"></script>',
                 "", page)
    assert "<script" not in own and "<img" not in own
    shown = str(escape(payload))
    assert page.count(f">{shown}</dd>") >= 2  # the summary and the child's voice
    assert f">{shown} {shown}</h3>" in page  # the child's names
