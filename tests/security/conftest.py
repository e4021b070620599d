"""One running copy of all five services for the whole security package, with its world."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from services.audit.main import build_app as build_audit
from services.audit.settings import AuditSettings
from services.audit.tree_head import generate_keypair
from services.common.settings import Settings
from services.identity.main import build_app as build_identity
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.security.world import World, populate
from tests.support.api import running
from tests.support.db import service_urls
from tests.support.ids import next_tag
from tests.support.kafka import delete_topics_with_prefix
from tests.support.keys import Keystore
from tests.support.tokens import identity_settings_for, trusting


@pytest.fixture(scope="package")
async def world(
    database: dict[str, str], kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
    session_keystore: Keystore,
) -> AsyncIterator[World]:
    """Identity, ingest, matcher, notifier and audit running in-process on their own topics;
    the four relay sign-ins to the one identity app."""
    prefix = f"t{next_tag()}."
    settings = Settings(
        env="test", **service_urls(database), kafka_bootstrap=kafka_bootstrap,
        topic_prefix=prefix, child_key_secret=secrets.token_hex(32),
        cookie_secure=False, db_pool_size=5, kafka_partitions=1, **trusting(),
        **session_keystore.settings(), shred_expired_keys=False)
    heads: Path = tmp_path_factory.mktemp("security") / "heads.jsonl"
    identity = build_identity(identity_settings_for(settings))

    def issuer() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=identity),
                                 base_url="http://identity")

    apps = {
        "identity": identity,
        "ingest": build_ingest(settings, issuer=issuer()),
        "matcher": build_matcher(settings, issuer=issuer()),
        "notifier": build_notifier(NotifierSettings(**settings.model_dump()), issuer=issuer()),
        "audit": build_audit(AuditSettings(
            **settings.model_dump(), audit_signing_key=generate_keypair().private_key,
            audit_heads_file=heads), issuer=issuer()),
    }
    # the portal's review pages call the matcher in-process, as they would at its address
    apps["notifier"].state.ctx.matcher_api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=apps["matcher"]), base_url="http://matcher")
    apps["notifier"].state.ctx.audit_api = httpx.AsyncClient(  # and the auditor's, the audit
        transport=httpx.ASGITransport(app=apps["audit"]), base_url="http://audit")
    apps["notifier"].state.ctx.ingest_api = httpx.AsyncClient(  # the admin's force pages
        transport=httpx.ASGITransport(app=apps["ingest"]), base_url="http://ingest")
    try:
        async with AsyncExitStack() as stack:
            clients = {name: await stack.enter_async_context(running(app))
                       for name, app in apps.items()}
            built = World(settings=settings, apps=apps, clients=clients)
            await populate(built)
            yield built
    finally:
        await delete_topics_with_prefix(settings.kafka(), prefix)
