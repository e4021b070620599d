"""Child data on the real broker and in the outbox is sealed, dead letters keep it sealed, and
once retention shreds its month's key a record read back from the topic never opens again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import select

from schemas import topics
from schemas.disclosures import ContentPurged
from schemas.envelope import RawEnvelope, wrap
from schemas.incidents import IncidentIn, IncidentReceived
from services.common.crypto import KeyShredded
from services.common.db import service_engine
from services.common.events import apply_records
from services.common.kafka import DeadLetters, KafkaPublisher, ensure_topics, make_producer
from services.common.models import outbox
from services.common.retention import KEYS_KIND
from services.common.sealing import ChildSealing, sealing_of
from services.common.settings import Settings
from services.ingest.main import build_app as build_ingest
from services.matcher.handlers import HANDLERS, MatcherDeps
from services.matcher.index import RosterCache
from services.notifier import retention as notifier_retention
from tests.support.api import issuer_for, new_police_client, police_token, running
from tests.support.ids import next_tag
from tests.support.incidents import incident_body
from tests.support.kafka import read_topic
from tests.support.keys import Keystore
from tests.support.sealed import clear_words as words_in_clear

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
CHILD_WORDS = ("Amelia", "Khan", "2016-03-02", "Oak Road", "DY1", "A123456789012", "scared",
               "Verbal argument")


def clear_words(value: bytes) -> list[str]:
    return words_in_clear(value, CHILD_WORDS)


@pytest.fixture
async def police(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    async with running(build_ingest(settings, issuer=issuer_for(settings))) as api:
        client_id, secret = await new_police_client(settings, "WMP")
        yield api, {"Authorization": f"Bearer {await police_token(api, client_id, secret)}"}


def as_record(value: bytes, topic: str) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic=topic, partition=0, offset=0, timestamp=0, timestamp_type=0,
                          key=b"k", value=value, checksum=None, serialized_key_size=1,
                          serialized_value_size=len(value), headers=())


async def test_a_reported_incident_is_sealed_on_the_topic_and_in_its_dead_letter(
        police: tuple[httpx.AsyncClient, dict[str, str]], settings: Settings) -> None:
    api, auth = police
    assert (await api.post("/v1/incidents", json=incident_body(), headers=auth)).status_code == 202
    topic = settings.topic(topics.INCIDENTS)
    [record] = await read_topic(settings.kafka(), topic, at_least=1)
    assert clear_words(record.value) == []
    raw = RawEnvelope.model_validate_json(record.value)
    assert raw.type == "IncidentReceived" and raw.payload["incident"]["force_code"] == "WMP"
    opened = ChildSealing.from_settings(settings).parse(record.value)
    assert opened.payload.incident.children[0].family_name == "Khan"

    # a dead letter is the original bytes: sealed as they were
    await ensure_topics(settings.kafka(), [topics.dlq(topic)], layout=settings.topic_layout())
    producer = make_producer(settings.kafka())
    await producer.start()
    try:
        await DeadLetters(producer).send(record, ValueError("poison"))
    finally:
        await producer.stop()
    [parked] = await read_topic(settings.kafka(), topics.dlq(topic), at_least=1)
    assert parked.value == record.value and clear_words(parked.value) == []


async def test_the_matcher_opens_a_sealed_incident_and_stages_its_decision_sealed(
        settings: Settings) -> None:
    engine = service_engine(settings, "matcher", pool_size=2)
    deps = MatcherDeps(engine=engine, roster=RosterCache(engine),
                       topic_prefix=settings.topic_prefix, clock=lambda: NOW,
                       published=lambda: None)
    incident_id = uuid.uuid4()
    body = incident_body(force="WMP")
    # on no roll: no name, birth date or UPN another test's roll could share
    body["children"][0] |= {"given_name": "Ottoline", "family_name": f"Khan{next_tag()}",
                            "date_of_birth": "2011-07-19", "upn": None, "school_hint": None}
    family = body["children"][0]["family_name"]
    event = IncidentReceived(incident_id=incident_id, received_at=NOW,
                             incident=IncidentIn.model_validate(body))
    wire = sealing_of(engine).envelope_bytes(wrap(event, occurred_at=NOW))
    assert family.encode() not in wire
    try:
        await apply_records([as_record(wire, topics.INCIDENTS)], HANDLERS, deps=deps)
        async with engine.connect() as conn:
            [row] = (await conn.execute(select(outbox.c.value).where(
                outbox.c.key == str(incident_id)))).scalars().all()
    finally:
        await engine.dispose()
    assert family.encode() not in row and clear_words(row) == []
    decided = ChildSealing.from_settings(settings).parse(row)
    assert decided.type == "ChildUnmatched" and decided.payload.child.family_name == family


def own_keys(settings: Settings, keystore: Keystore, **more: Any) -> Settings:
    return settings.model_copy(update=keystore.settings() | more)


async def test_past_retention_a_record_on_the_topic_can_no_longer_be_opened(
        settings: Settings, keystore: Keystore) -> None:
    owner = own_keys(settings, keystore, shred_expired_keys=True)  # this test's keys alone
    topic = settings.topic(topics.INCIDENTS)
    publisher = KafkaPublisher(owner.kafka(), topics=[topic], layout=owner.topic_layout(),
                               sealing=ChildSealing.from_settings(owner))
    incident_id, reported_at = uuid.uuid4(), datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
    event = IncidentReceived(incident_id=incident_id, received_at=reported_at,
                             incident=IncidentIn.model_validate(incident_body(force="WMP")))
    try:
        await publisher.publish(topic, key=str(incident_id),
                                value=wrap(event, occurred_at=reported_at).to_bytes())
    finally:
        await publisher.stop()
    [record] = await read_topic(owner.kafka(), topic, at_least=1)
    assert ChildSealing.from_settings(owner).parse(record.value).payload == event

    june = datetime(2026, 6, 1, tzinfo=UTC)  # 90 days back is March: January is past
    not_owner = service_engine(own_keys(owner, keystore, shred_expired_keys=False), "notifier")
    engine = service_engine(owner, "notifier", pool_size=2)
    try:
        kw: dict[str, Any] = {"topic_prefix": owner.topic_prefix, "days": 90, "now": june,
                              "trigger": "cli"}
        await notifier_retention.run_retention(not_owner, **kw)
        assert keystore.keyring().periods() == ["2026-01"]  # only the owner shreds
        await notifier_retention.run_retention(engine, **kw)
        purges = [sealing_of(engine).parse(v).payload for v in await staged(engine, owner)]
    finally:
        await engine.dispose()
        await not_owner.dispose()

    assert keystore.keyring().periods() == [] and keystore.keyring().shredded_through() == "2026-02"
    [again] = await read_topic(owner.kafka(), topic, at_least=1)
    raw = RawEnvelope.model_validate_json(again.value)  # ids and codes still read
    assert (raw.payload["incident_id"], raw.payload["incident"]["force_code"],
            raw.payload["incident"]["incident_type"]) == (
        str(incident_id), "WMP", "domestic_abuse")
    with pytest.raises(KeyShredded):
        ChildSealing.from_settings(owner).parse(again.value)  # a fresh keyring, nothing cached
    [shred] = [p for p in purges if isinstance(p, ContentPurged) and p.kind == KEYS_KIND]
    assert (shred.count, shred.cutoff, shred.retention_days) == (
        1, datetime(2026, 3, 1, tzinfo=UTC), 90)


async def staged(engine: Any, settings: Settings) -> list[bytes]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(outbox.c.value).where(
            outbox.c.source == f"{settings.topic_prefix}notifier",
            outbox.c.topic == settings.topic(topics.DISCLOSURES)))).scalars())
