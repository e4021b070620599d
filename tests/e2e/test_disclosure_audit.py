"""A DSL views a notification: the auditor sees exactly that disclosure, can prove it is in
the log, and `verify` names the row after someone with database access edits it."""

from __future__ import annotations

import asyncio
import random
import string
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from services.audit.main import build_app as build_audit
from services.audit.merkle import leaf_hash, verify_inclusion
from services.audit.settings import AuditSettings
from services.audit.tree_head import generate_keypair
from services.common.pseudonym import child_key
from services.common.security import Principal
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.support.api import issuer_for, new_police_client, police_token, running
from tests.support.audit import tamper
from tests.support.ids import next_la, next_tag, next_urn
from tests.support.incidents import incident_body
from tests.support.registry import pupil, seed
from tests.support.tokens import bearer

pytestmark = pytest.mark.e2e


async def poll(get: Any, ready: Any, *, seconds: float = 60) -> Any:
    for _ in range(int(seconds * 5)):
        value = await get()
        if ready(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("timed out waiting")


async def test_dsl_view_is_audited_provable_and_tamper_evident(
    settings, database, tmp_path
) -> None:
    audit_settings = AuditSettings(
        **settings.model_dump(), audit_signing_key=generate_keypair().private_key,
        audit_heads_file=tmp_path / "heads.jsonl", audit_sign_every=1, audit_sign_interval_s=0.5)
    notifier_settings = NotifierSettings(**settings.model_dump())
    la, urn = next_la(), next_urn()
    family = "".join(random.choices(string.ascii_lowercase, k=9)).title()
    born = date(2012, 1, 1) + timedelta(days=random.randint(0, 2500))
    await seed(settings, las=[la], school_rows=[
        {"urn": urn, "name": "Audit Primary", "la_code": la, "postcode": "WV1 1AA",
         "contacts": [{"role": "dsl", "name": "D", "email": "dsl@audit.test"}]}],
        pupil_rows=[pupil(urn, "", "Maya", family, born.isoformat(),
                          address_line1="3 Elm Way", postcode="WV1 1AA")])
    body = incident_body()
    body["children"][0].update(given_name="Maya", family_name=family,
                               date_of_birth=born.isoformat(), school_hint=None,
                               address={"line1": "3 Elm Way", "postcode": "WV1 1AA"})
    body["children"][0].pop("upn")
    dsl = Principal(subject=f"dsl-{next_tag()}", kind="user", role="dsl",
                    scopes=frozenset({"notifications:read", "notifications:ack"}),
                    school_urns=frozenset({urn}))
    auditor = Principal(subject="auditor-e2e", kind="user", role="auditor",
                        scopes=frozenset({"audit:read"}))

    async with (running(build_matcher(settings)), running(build_notifier(notifier_settings))
                as notifier, running(build_audit(audit_settings)) as audit,
                running(build_ingest(settings, issuer=issuer_for(settings))) as ingest):
        police = await police_headers(settings, ingest)
        assert (await ingest.post("/v1/incidents", json=body, headers=police)).status_code == 202
        as_dsl = bearer(dsl)
        listed = await poll(lambda: notifier.get("/v1/notifications", headers=as_dsl),
                            lambda r: r.json()["items"])
        notification_id = listed.json()["items"][0]["id"]
        detail = await notifier.get(f"/v1/notifications/{notification_id}", headers=as_dsl)
        assert detail.status_code == 200
        assert detail.json()["children"][0]["family_name"] == family

        as_auditor = bearer(auditor)
        seen = await poll(
            lambda: audit.get("/v1/audit/events", params={"actor": dsl.subject},
                              headers=as_auditor),
            lambda r: len(r.json()["events"]) >= 2)
        # the view, and the child's history shown beside it: each its own disclosure
        logged = seen.json()["events"]
        [event] = [e for e in logged if e["action"] == "notification.view"]
        [history] = [e for e in logged if e is not event]
        assert history["action"] == "history.read" and history["child_key"] == event["child_key"]
        assert event["channel"] == "api"
        assert event["actor_role"] == "dsl" and event["school_urn"] == urn
        assert event["notification_id"] == notification_id
        assert event["child_key"] == child_key(
            settings.child_key_secret.get_secret_value(), given_name="Maya",
            family_name=family, date_of_birth=born)
        assert family not in str(event)

        proof = (await audit.get(f"/v1/audit/events/{event['id']}/proof",
                                 headers=as_auditor)).json()
        assert verify_inclusion(
            leaf_hash(bytes.fromhex(event["hash"])), proof["leaf_index"], proof["tree_size"],
            [bytes.fromhex(p) for p in proof["proof"]], bytes.fromhex(proof["root_hash"]))
        assert (await audit.get("/v1/audit/verify", headers=as_auditor)).json()["ok"]

        await tamper(database, "UPDATE audit.audit_events SET actor = 'someone-else' WHERE id = $1",
                     event["id"])
        try:
            report = (await audit.get("/v1/audit/verify", headers=as_auditor)).json()
            assert report["ok"] is False and report["first_bad"] == event["id"]
        finally:
            await tamper(database, "UPDATE audit.audit_events SET actor = $2 WHERE id = $1",
                         event["id"], dsl.subject)
        assert (await audit.get("/v1/audit/verify", headers=as_auditor)).json()["ok"]


async def police_headers(settings: Any, ingest: httpx.AsyncClient) -> dict[str, str]:
    client_id, secret = await new_police_client(settings, "WMP")
    return {"Authorization": f"Bearer {await police_token(ingest, client_id, secret)}"}
