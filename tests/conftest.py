"""Shared fixtures: the real PostgreSQL and Kafka, a throwaway database per session."""

from __future__ import annotations

import os
import secrets
import shlex
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.settings import KafkaConnection, Settings

if TYPE_CHECKING:
    from tests.support.keys import Keystore

REPO = Path(__file__).resolve().parent.parent


def _load_local_env() -> None:
    """Pick up the secrets `scripts/infra.sh up` wrote, unless the environment has them."""
    env_file = REPO / ".daybreak" / "env"
    if not env_file.exists():
        return
    for line in env_file.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export "):]
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            os.environ.setdefault(key, shlex.split(value)[0] if value else "")


_load_local_env()
# switches of the local stack that the tests set themselves, per test or per stack, so that no
# test's outcome depends on the checkout's env file: loopback webhooks (the `receiver`
# fixture) and the child-data keystore (the session's own: `session_keystore`)
for _local_only in ("DAYBREAK_WEBHOOK_ALLOW_LOOPBACK", "DAYBREAK_KEYSTORE_DIR",
                    "DAYBREAK_KEK_FILE"):
    os.environ.pop(_local_only, None)


def _session_secrets() -> None:
    """The session's own TOTP key file (a temp dir, mode 0600, removed at exit) and /metrics
    token, whatever the deployment's are: every Settings built in tests reads them."""
    import atexit
    import shutil
    import tempfile

    from services.identity.totp_vault import create_key_file

    keys = Path(tempfile.mkdtemp(prefix="daybreak-keys-"))
    atexit.register(shutil.rmtree, keys, ignore_errors=True)
    create_key_file(keys / "identity-totp.key")
    os.environ["DAYBREAK_IDENTITY_TOTP_KEY_FILE"] = str(keys / "identity-totp.key")
    os.environ["DAYBREAK_METRICS_TOKEN"] = secrets.token_urlsafe(32)
    # gauges as of each scrape: tests scrape, change tables and scrape again at once
    os.environ["DAYBREAK_METRICS_CACHE_SECONDS"] = "0"


_session_secrets()

# fixtures more than one tier uses, beside the helpers they go with (tests/support/*.py);
# each after the ones it imports, so that pytest can rewrite its asserts
pytest_plugins = (
    "tests.support.browser",
    "tests.support.clock",
    "tests.support.keys",
    "tests.support.smtp",
    "tests.support.webhooks",
    "tests.support.notifier",
    "tests.support.portal",
    "tests.support.registry",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The shared broker's outage test after every other test that uses it; the tests on a
    private stack (the chaos tier, the benchmark's smoke run: minutes of load) after all."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("chaos") or item.get_closest_marker("stack"):
            return 2
        return 1 if item.get_closest_marker("broker_outage") else 0

    items.sort(key=rank)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The session's broker."""
    return os.environ.get("DAYBREAK_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


@pytest.fixture(scope="session")
def kafka(kafka_bootstrap: str) -> KafkaConnection:
    """The session's broker as the principal of DAYBREAK_KAFKA_USERNAME (admin: tests create
    and delete their own topics)."""
    return Settings(env="development", kafka_bootstrap=kafka_bootstrap).kafka()


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[dict[str, str]]:
    """A fresh database migrated to head, dropped at the end of the session."""
    from tests.support.db import create_test_database, drop_test_database

    urls = await create_test_database()
    yield urls
    await drop_test_database(urls)


@pytest.fixture
async def topic_prefix(kafka: KafkaConnection) -> AsyncIterator[str]:
    """A prefix that gives each test its own topics, deleted afterwards."""
    from tests.support.ids import next_tag
    from tests.support.kafka import delete_topics_with_prefix

    prefix = f"t{next_tag()}."
    yield prefix
    await delete_topics_with_prefix(kafka, prefix)


@pytest.fixture
async def engine(database: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    """The owner's engine on the session database (seeding and checks), disposed after."""
    from services.common.db import make_engine

    engine = make_engine(database["owner_url"], pool_size=4)
    yield engine
    await engine.dispose()


@pytest.fixture
async def matcher_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The matcher's own role and schema."""
    from services.common.db import service_engine

    engine = service_engine(settings, "matcher", pool_size=4)
    yield engine
    await engine.dispose()


@pytest.fixture
async def notifier_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The notifier's own role and schema."""
    from services.common.db import service_engine

    engine = service_engine(settings, "notifier", pool_size=4)
    yield engine
    await engine.dispose()


@pytest.fixture
def settings(database: dict[str, str], kafka_bootstrap: str, topic_prefix: str,
             session_keystore: Keystore) -> Settings:
    """Settings pointing at the session database, the broker, this test's topics and the
    session keystore, trusting the session's token keys (tests/support/tokens.py)."""
    from tests.support.db import service_urls
    from tests.support.tokens import trusting

    return Settings(
        env="test", **service_urls(database), kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix, child_key_secret=secrets.token_hex(32),
        cookie_secure=False, db_pool_size=5, kafka_partitions=2, **trusting(),
        webhook_allow_loopback=True,  # the `receiver` fixture listens on 127.0.0.1
        # the keystore is the session's: no test shreds it but with a keystore of its own
        **session_keystore.settings(), shred_expired_keys=False,
    )
