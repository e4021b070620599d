"""Every service's /readyz checks both PostgreSQL and the broker (compose waits on it)."""

from __future__ import annotations

import httpx
import pytest

from services.audit.main import build_app as build_audit
from services.audit.settings import AuditSettings
from services.audit.tree_head import generate_keypair
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings

pytestmark = pytest.mark.integration


def builders(settings, tmp_path):
    audit = AuditSettings(**settings.model_dump(), audit_heads_file=tmp_path / "h.jsonl",
                          audit_signing_key=generate_keypair().private_key)
    return [
        lambda: build_ingest(settings),
        lambda: build_matcher(settings),
        lambda: build_notifier(NotifierSettings(**settings.model_dump())),
        lambda: build_audit(audit),
    ]


async def readyz(app) -> int:
    # no lifespan: only the readiness checks themselves run
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        return (await client.get("/readyz")).status_code


async def test_ready_with_broker_and_database_and_not_without_the_broker(
    settings, tmp_path
) -> None:
    assert [await readyz(build()) for build in builders(settings, tmp_path)] == [200] * 4
    away = settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    assert [await readyz(build()) for build in builders(away, tmp_path)] == [503] * 4
