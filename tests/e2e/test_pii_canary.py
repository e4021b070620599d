"""PII canary: a child with unmistakable names runs through the whole pipeline, and the names
appear in no log line, e-mail, URL, Kafka key, metric or error body (Kafka values and the
authorised views may carry them: that is what they are for)."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from datetime import UTC, date, datetime, timedelta

import pytest

from services.audit.main import build_app as build_audit
from services.audit.settings import AuditSettings
from services.audit.tree_head import generate_keypair
from services.common.logs import JsonFormatter
from services.common.security import Principal
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.support.api import issuer_for, metrics_auth, new_police_client, police_token, running
from tests.support.ids import next_la, next_urn
from tests.support.incidents import incident_body
from tests.support.kafka import read_topic
from tests.support.registry import pupil, seed
from tests.support.tokens import bearer

pytestmark = pytest.mark.e2e
GIVEN, FAMILY = "Qzcanaryella", "Vwcanaryholt"
TOPICS = ("incidents.v1", "matches.v1", "reviews.v1", "notifications.v1", "disclosures.v1")


async def test_canary_names_leak_nowhere(settings, smtp, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    inbox, smtp_port = smtp
    born = date(2013, 1, 1) + timedelta(days=random.randint(0, 2000))
    la, urn = next_la(), next_urn()
    await seed(settings, las=[la], school_rows=[{
        "urn": urn, "name": "Canary Primary", "la_code": la, "postcode": "WV1 1AA",
        "contacts": [{"role": "dsl", "name": "Key Adult", "email": "dsl@canary.test"}]}],
        pupil_rows=[pupil(urn, "", GIVEN, FAMILY, born.isoformat(),
                          address_line1="9 Lark Rise", postcode="WV1 1AA")])
    notifier_settings = NotifierSettings(**settings.model_dump() | {"smtp_port": smtp_port})
    audit_settings = AuditSettings(
        **settings.model_dump(), audit_signing_key=generate_keypair().private_key,
        audit_heads_file=tmp_path / "heads.jsonl")
    body = incident_body()
    body["children"][0].update(given_name=GIVEN, family_name=FAMILY,
                               date_of_birth=born.isoformat(), school_hint=None,
                               address={"line1": "9 Lark Rise", "postcode": "WV1 1AA"})
    body["children"][0].pop("upn")
    dsl = Principal(subject="dsl-canary", kind="user", role="dsl",
                    scopes=frozenset({"notifications:read", "notifications:ack"}),
                    school_urns=frozenset({urn}))
    bodies: list[str] = []
    metrics: list[str] = []
    notifier_app = build_notifier(notifier_settings)
    async with (running(build_matcher(settings)) as matcher,
                running(notifier_app) as notifier,
                running(build_audit(audit_settings)) as audit,
                running(build_ingest(settings, issuer=issuer_for(settings))) as ingest):
        client_id, secret = await new_police_client(settings, "WMP")
        police = {"Authorization": f"Bearer {await police_token(ingest, client_id, secret)}"}
        bad = {**body, "children": [{**body["children"][0], "date_of_birth": "20x3-99-99",
                                     "gender": FAMILY}]}
        refused = await ingest.post("/v1/incidents", json=bad, headers=police)
        assert refused.status_code == 422
        bodies.append(refused.text)
        accepted = await ingest.post("/v1/incidents", json=body, headers=police)
        assert accepted.status_code == 202
        bodies.append(accepted.text)
        as_dsl = bearer(dsl)
        for _ in range(150):
            listed = await notifier.get("/v1/notifications", headers=as_dsl)
            if listed.json()["items"]:
                break
            await asyncio.sleep(0.2)
        item = listed.json()["items"][0]
        bodies.append(listed.text)
        # the morning window opens: the running dispatcher sends the content-free e-mail
        push_at = datetime.fromisoformat(item["push_at"])
        notifier_app.state.ctx.clock = lambda: max(datetime.now(UTC), push_at)
        for _ in range(100):
            if inbox.to("dsl@canary.test"):
                break
            await asyncio.sleep(0.2)
        assert inbox.to("dsl@canary.test")
        shown = await notifier.get(f"/v1/notifications/{item['id']}", headers=as_dsl)
        assert FAMILY in shown.text  # the authorised, audited view does show the child
        missing = await notifier.get(f"/v1/notifications/{secrets.token_hex(4)}", headers=as_dsl)
        bodies.append(missing.text)
        for client in (ingest, matcher, notifier, audit):
            metrics.append((await client.get("/metrics", headers=metrics_auth())).text)

    keys: list[bytes] = []
    for topic in TOPICS:
        keys += [r.key or b"" for r in await read_topic(settings.kafka(),
                                                        settings.topic(topic))]
    assert keys, "the pipeline produced no Kafka records"
    emails = [m.content for m in inbox.messages]
    # rendered as the services render them in production: message plus every extra field
    logs = [JsonFormatter().format(record) for record in caplog.records]
    assert logs
    for place, texts in (("log", logs), ("e-mail", [e.decode(errors="replace") for e in emails]),
                         ("Kafka key", [k.decode(errors="replace") for k in keys]),
                         ("metric", metrics), ("response body", bodies)):
        for text in texts:
            for name in (GIVEN, FAMILY):
                assert name.lower() not in text.lower(), f"{name} leaked into a {place}"
