"""Kafka over TLS (SASL_SSL): a service's worker and the transactional publisher produce and
consume on a throwaway broker's TLS listener only; a client that does not trust the broker's
CA is refused at once with a certificate error."""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import insert

from schemas.topics import INCIDENTS, MATCHES
from services.common import dev_tls
from services.common.bootstrap import build_worker
from services.common.db import UnitOfWork, service_engine
from services.common.kafka import KafkaPublisher, broker_answers
from services.common.kafka_access import ADMIN, INGEST, MATCHER
from services.common.models import outbox
from services.common.settings import KafkaConnection, Settings, TopicLayout
from tests.support.db import service_urls
from tests.support.ids import next_tag
from tests.support.kafka import read_topic
from tests.support.keys import Keystore
from tests.support.ports import free_port
from tests.support.stack_infra import Kafka

pytestmark = [pytest.mark.integration, pytest.mark.stack]
LAYOUT = TopicLayout(partitions=1)


@pytest.fixture(scope="module")
def broker() -> Iterator[Kafka]:
    """One private broker for the module, its users, topics and ACLs set up over TLS."""
    root = Path(tempfile.mkdtemp(prefix="daybreak-ktls-"))
    (root / "logs" / "kafka").mkdir(parents=True)
    kafka = Kafka(root, free_port(), free_port())
    try:
        kafka.init()
        yield kafka
    finally:
        kafka.kill()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def prefix(broker: Kafka) -> str:
    """This test's topics, users' ACLs under it, made through the TLS listener."""
    name = f"t{next_tag()}."
    broker.setup(prefix=name, layout=LAYOUT, tls=True)
    return name


def tls_settings(broker: Kafka, prefix: str, principal: str, database: dict[str, str],
                 keystore: Keystore) -> Settings:
    """A service's settings as a deployment across hosts gives them: SASL_SSL and the CA."""
    return Settings(
        env="test", **service_urls(database), topic_prefix=prefix,
        kafka_bootstrap=broker.tls_bootstrap, kafka_security_protocol="SASL_SSL",
        kafka_ca_file=str(broker.tls.ca_file), kafka_username=principal,
        kafka_password=broker.passwords[principal], kafka_partitions=1,
        child_key_secret=secrets.token_hex(32), **keystore.settings(),
        shred_expired_keys=False)


@pytest.fixture
def matcher(broker: Kafka, prefix: str, database: dict[str, str],
            session_keystore: Keystore) -> Settings:
    """The matcher's settings: its own principal, the TLS port alone."""
    return tls_settings(broker, prefix, MATCHER.name, database, session_keystore)


async def test_a_services_worker_and_the_publisher_talk_over_tls_only(
    broker: Kafka, prefix: str, matcher: Settings, database: dict[str, str],
    session_keystore: Keystore,
) -> None:
    assert matcher.kafka().client_options()["security_protocol"] == "SASL_SSL"
    ingest = tls_settings(broker, prefix, INGEST.name, database, session_keystore).kafka()
    # a fresh broker makes its transaction and offsets topics on first use: slow on 2 cores
    publisher = KafkaPublisher(ingest, topics=[f"{prefix}{INCIDENTS}"], layout=LAYOUT,
                               transactional_id=INGEST.transactional_id(prefix, "tls"),
                               request_timeout_ms=30_000)
    seen: list[ConsumerRecord[bytes, bytes]] = []
    got = asyncio.Event()

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        seen.append(record)
        got.set()

    engine = service_engine(matcher, "matcher", pool_size=2)
    worker = build_worker(MATCHER, matcher, engine=engine, source="matcher", handle=handle)
    worker.start()
    try:
        # ingest's transactional publisher to the matcher's consumer group, both over TLS
        await publisher.publish(f"{prefix}{INCIDENTS}", key="k1", value=b"over-tls")
        await asyncio.wait_for(got.wait(), 120)
        assert [(r.key, r.value) for r in seen] == [(b"k1", b"over-tls")]
        # the matcher's outbox relay publishes over TLS too
        async with UnitOfWork(engine) as uow:
            await uow.conn.execute(insert(outbox).values(
                source=matcher.topic("matcher"), topic=f"{prefix}{MATCHES}", key="k2",
                event_id=uuid.uuid4(), value=b"relayed-over-tls"))
            await uow.commit()
        worker.wake_relay()
        admin = broker.connection(ADMIN, tls=True)
        records = await read_topic(admin, f"{prefix}{MATCHES}", at_least=1, timeout_s=120)
        assert [(r.key, r.value) for r in records] == [(b"k2", b"relayed-over-tls")]
    finally:
        await worker.stop()
        await publisher.stop()
        await engine.dispose()


async def test_a_client_that_does_not_trust_the_brokers_ca_is_refused_at_once(
    broker: Kafka, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other, _ = dev_tls.ensure_broker_tls(tmp_path / "other")
    good = broker.connection(ADMIN, tls=True)
    await broker_answers(good, timeout_s=20)
    for ca_file in (str(other.ca_file), None):  # another CA; the system's CAs
        impostor = KafkaConnection(good.bootstrap, security_protocol="SASL_SSL",
                                   ca_file=ca_file, username=good.username,
                                   password=good.password)
        caplog.clear()
        started = asyncio.get_running_loop().time()
        with caplog.at_level(logging.ERROR, logger="aiokafka"), \
                pytest.raises(KafkaConnectionError):
            await broker_answers(impostor, timeout_s=20)
        assert asyncio.get_running_loop().time() - started < 10  # refused, not timed out
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


async def test_a_plaintext_client_gets_nothing_from_the_tls_listener(broker: Kafka) -> None:
    good = broker.connection(ADMIN, tls=True)
    plain = KafkaConnection(good.bootstrap, username=good.username, password=good.password)
    with pytest.raises((KafkaConnectionError, asyncio.TimeoutError)):
        await broker_answers(plain, timeout_s=5)
