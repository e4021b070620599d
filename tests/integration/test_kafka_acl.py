"""The broker's principals and ACLs: each service may do exactly what it does, and no more.

Runs against the session's broker as scripts/infra.sh sets it up (SASL/SCRAM, the
StandardAuthorizer, nothing allowed without an ACL): the services' users and passwords are the
deployment's own, and each test grants the matrix on its own topic prefix, revoked afterwards.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from schemas import topics
from schemas.envelope import wrap
from schemas.identity import SessionsRevoked
from services.common import kafka_setup
from services.common.kafka import broker_answers, ensure_topics, make_consumer, make_producer
from services.common.kafka_access import (
    AUDIT,
    IDENTITY,
    INGEST,
    MATCHER,
    NOTIFIER,
    SERVICES,
    ServiceAccess,
)
from services.common.revocations import Denylist, RevocationFeed
from services.common.settings import KafkaConnection, TopicLayout
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def granted(kafka: KafkaConnection, topic_prefix: str) -> AsyncIterator[str]:
    """The deployment's topics and the whole ACL matrix under this test's prefix."""
    passwords = {s.name: _password(s.name) for s in SERVICES}
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        await kafka_setup.upsert_users(admin, passwords)  # the same passwords: a no-op
        await ensure_topics(kafka, kafka_setup.deployment_topics(topic_prefix),
                            layout=TopicLayout(partitions=1))
        await kafka_setup.create_acls(admin, kafka_setup.all_grants(topic_prefix))
    finally:
        await admin.close()
    yield topic_prefix
    for service in SERVICES:
        await kafka_setup.delete_acls_of(kafka, service.name, prefix=topic_prefix)


def _password(principal: str) -> str:
    name = kafka_setup.password_variable(principal)
    password = os.environ.get(name)
    assert password, f"{name} missing: run scripts/infra.sh up and load .daybreak/env"
    return password


def _as(kafka: KafkaConnection, service: ServiceAccess) -> KafkaConnection:
    return kafka.as_user(service.name, _password(service.name))


async def _produce(kafka: KafkaConnection, topic: str) -> None:
    producer = make_producer(kafka)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"acl-test")
    finally:
        await producer.stop()


async def _join(kafka: KafkaConnection, topic: str, *, group_id: str) -> None:
    """Join the group on the topic, read, and commit an offset."""
    consumer = make_consumer(kafka, topic, group_id=group_id)
    try:
        await consumer.start()
        batch = await consumer.getmany(timeout_ms=5000)
        while not batch:
            batch = await consumer.getmany(timeout_ms=1000)
        tp, records = next(iter(batch.items()))
        await consumer.commit({tp: records[-1].offset + 1})
    finally:
        await consumer.stop()


async def test_a_client_without_sasl_is_refused(kafka: KafkaConnection) -> None:
    plain = KafkaConnection(kafka.bootstrap, security_protocol="PLAINTEXT")
    with pytest.raises(KafkaConnectionError):
        await broker_answers(plain)
    await broker_answers(kafka)  # the same broker, answering once authenticated


async def test_a_wrong_password_is_refused_and_the_right_one_accepted(
    kafka: KafkaConnection, granted: str
) -> None:
    topic = granted + topics.INCIDENTS
    with pytest.raises(KafkaConnectionError):
        await _produce(kafka.as_user(INGEST.name, "not-the-password"), topic)
    with pytest.raises(KafkaConnectionError):
        await _produce(kafka.as_user("nobody", _password(INGEST.name)), topic)
    await _produce(_as(kafka, NOTIFIER), granted + topics.DISCLOSURES)


@pytest.mark.parametrize("base", [topics.INCIDENTS, topics.MATCHES])
async def test_the_notifier_cannot_forge_incidents_or_matches(
    kafka: KafkaConnection, granted: str, base: str
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(_as(kafka, NOTIFIER), granted + base)


async def test_the_matcher_cannot_forge_incidents_nor_ingest_decide_children(
    kafka: KafkaConnection, granted: str
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(_as(kafka, MATCHER), granted + topics.INCIDENTS)
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(_as(kafka, INGEST), granted + topics.MATCHES)


async def test_ingest_cannot_read_matches_nor_even_its_own_incidents(
    kafka: KafkaConnection, granted: str
) -> None:
    for base in (topics.MATCHES, topics.INCIDENTS):
        consumer = AIOKafkaConsumer(granted + base, **_as(kafka, INGEST).client_options(),
                                    enable_auto_commit=False)
        with pytest.raises(TopicAuthorizationFailedError):
            try:
                await consumer.start()
                await consumer.getmany(timeout_ms=2000)
            finally:
                await consumer.stop()


async def test_a_service_cannot_join_another_services_group(
    kafka: KafkaConnection, granted: str
) -> None:
    await _produce(kafka, granted + topics.INCIDENTS)
    with pytest.raises(GroupAuthorizationFailedError):
        await _join(_as(kafka, MATCHER), granted + topics.INCIDENTS,
                    group_id=NOTIFIER.group_id(granted))


async def test_the_audit_service_reads_disclosures_but_not_incidents(
    kafka: KafkaConnection, granted: str
) -> None:
    await _produce(kafka, granted + topics.INCIDENTS)
    with pytest.raises(TopicAuthorizationFailedError):
        await _join(_as(kafka, AUDIT), granted + topics.INCIDENTS,
                    group_id=AUDIT.group_id(granted))


async def test_ingest_may_only_use_its_own_transactional_ids(
    kafka: KafkaConnection, granted: str
) -> None:
    producer = AIOKafkaProducer(**_as(kafka, INGEST).client_options(),
                                transactional_id=f"{granted}someone-else")
    with pytest.raises(TransactionalIdAuthorizationFailed):
        try:
            await producer.start()
        finally:
            await producer.stop()


async def test_identity_writes_revocations_and_nothing_else(
    kafka: KafkaConnection, granted: str
) -> None:
    identity = _as(kafka, IDENTITY)
    await _produce(identity, granted + topics.REVOCATIONS)
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(identity, granted + topics.DISCLOSURES)
    await _produce(kafka, granted + topics.INCIDENTS)
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        await _join(identity, granted + topics.INCIDENTS, group_id=f"{granted}daybreak-identity")


@pytest.mark.parametrize("service", [INGEST, MATCHER, NOTIFIER, AUDIT], ids=lambda s: s.name)
async def test_every_verifier_reads_the_revocations_whole_and_cannot_forge_one(
    kafka: KafkaConnection, granted: str, service: ServiceAccess
) -> None:
    topic = granted + topics.REVOCATIONS
    revoked = SessionsRevoked(sid="s-acl", revoked_before=datetime.now(UTC), reason="signed_out")
    producer = make_producer(_as(kafka, IDENTITY))
    await producer.start()
    try:
        await producer.send_and_wait(topic, wrap(revoked).to_bytes(), key=b"s-acl")
    finally:
        await producer.stop()
    # from the topic's start, with no group (each process reads it all)
    feed = RevocationFeed(_as(kafka, service), topic,
                          denylist=Denylist(horizon=timedelta(hours=13)))
    feed.start()
    try:
        await asyncio.wait_for(feed.denylist.caught_up.wait(), 30)
    finally:
        await feed.stop()
    assert feed.denylist.revoked({"sid": "s-acl", "sub": "anyone", "iat": 0})
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(_as(kafka, service), topic)


async def test_ingest_publishes_incidents_in_its_transactions(
    kafka: KafkaConnection, granted: str
) -> None:
    topic = granted + topics.INCIDENTS
    producer = AIOKafkaProducer(**_as(kafka, INGEST).client_options(), acks="all",
                                transactional_id=INGEST.transactional_id(granted, "acl-test"))
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"{}", key=b"acl-test")
    finally:
        await producer.stop()
    assert len(await read_topic(kafka, topic, at_least=1)) == 1


@pytest.mark.parametrize("service", [INGEST, MATCHER, NOTIFIER, AUDIT], ids=lambda s: s.name)
async def test_each_consuming_service_does_what_it_does(
    kafka: KafkaConnection, granted: str, service: ServiceAccess
) -> None:
    own = _as(kafka, service)
    for base in service.produces:
        await _produce(own, granted + base)
    for base in service.consumes:
        await _produce(kafka, granted + base)
        await _join(own, granted + base, group_id=service.group_id(granted))
        await _produce(own, granted + topics.dlq(base))  # a dead letter
    await _read_what_the_metrics_read(own, service, granted)
    if service.outbox:  # the relay's crash recovery scans what it produced
        for base in service.produces:
            assert await read_topic(own, granted + base, at_least=1)


async def _read_what_the_metrics_read(
    kafka: KafkaConnection, service: ServiceAccess, prefix: str
) -> None:
    """Dead-letter depth and the committed lag, as services.common.metrics reads them."""
    tps = [TopicPartition(prefix + t, 0) for t in service.consumes]
    dlqs = [TopicPartition(prefix + topics.dlq(t), 0) for t in service.consumes]
    consumer = AIOKafkaConsumer(**kafka.client_options(), isolation_level="read_committed")
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await consumer.start()
    await admin.start()
    try:
        assert all(end >= 1 for end in (await consumer.end_offsets(dlqs)).values())
        assert await consumer.beginning_offsets(tps)
        committed = await admin.list_consumer_group_offsets(service.group_id(prefix),
                                                            partitions=tps)
        assert all(committed[tp].offset >= 1 for tp in tps)
    finally:
        await admin.close()
        await consumer.stop()
