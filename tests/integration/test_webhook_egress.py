"""Webhooks go only where they may: pinned to the checked address with the host's name kept,
never redirected, refused (and recorded) when a name resolves inside, refused at registration."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.safe_http import Egress, egress_client
from services.common.settings import Settings
from services.common.webhook_signing import HttpxWebhookPoster
from services.ingest.main import build_app
from services.ingest.settings import IngestSettings
from services.notifier.channels import SmtpMailer
from services.notifier.dispatch import Dispatcher
from services.notifier.models import webhook_deliveries
from services.notifier.settings import NotifierSettings
from tests.support.api import running
from tests.support.clock import Clock
from tests.support.ids import next_force, next_urn
from tests.support.incidents import register_force
from tests.support.notifier import add_school
from tests.support.registry import school_body
from tests.support.tls import ServerCert
from tests.support.tokens import bearer, police
from tests.support.webhooks import HOOK_SECRET, TLS_HOOK_HOST, Receiver

pytestmark = pytest.mark.integration
# before any other test's deliveries: the dispatcher at this hour sees only this module's
LONG_AGO = datetime(2000, 1, 3, 7, 0, tzinfo=UTC)
SECRET = "a-force-receipts-secret-32-chars-long"


def resolving(names: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """A resolver stub: each name's addresses (a name it does not know has none)."""
    async def resolve(host: str, port: int) -> list[str]:
        return names.get(host, [])
    return resolve


def poster(http: httpx.AsyncClient, *, loopback: bool, **names: list[str]
           ) -> HttpxWebhookPoster:
    """The webhook poster; the system resolver unless `names` (dots as underscores) are given."""
    stub = resolving({k.replace("_", "."): v for k, v in names.items()}) if names else None
    return HttpxWebhookPoster(http, egress=Egress(allow_loopback=loopback, timeout_s=5,
                                                  resolve=stub))


async def post(hooks: HttpxWebhookPoster, url: str, secret: str = HOOK_SECRET) -> None:
    await hooks.post(url, secret=secret, body=b'{"event":"notice"}', timestamp=1_700_000_000,
                     delivery_id="1")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with egress_client(5) as client:
        yield client


async def test_a_post_goes_to_the_checked_address_with_the_hosts_name(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    url = receiver.url.replace("127.0.0.1", "hooks.example.test")
    await post(poster(http, loopback=True, hooks_example_test=["127.0.0.1"]), url)
    port = url.split(":")[2].split("/")[0]
    assert len(receiver.verified) == 1 and receiver.hosts == [f"hooks.example.test:{port}"]


async def test_tls_to_the_pinned_address_checks_the_certificate_for_the_name(
    tls_receiver: tuple[Receiver, ServerCert]
) -> None:
    receiver, cert = tls_receiver
    async with egress_client(5, verify=cert.client_context()) as http:
        hooks = poster(http, loopback=True, hooks_example_test=["127.0.0.1"],
                       other_example_test=["127.0.0.1"])
        await post(hooks, receiver.url)  # SNI and the certificate name the host, not 127.0.0.1
        assert len(receiver.verified) == 1 and receiver.hosts[0].startswith(TLS_HOOK_HOST)
        with pytest.raises(httpx.ConnectError):  # a certificate for another name is refused
            await post(hooks, receiver.url.replace(TLS_HOOK_HOST, "other.example.test"))
    assert len(receiver.verified) == 1


async def test_a_redirect_is_a_failure_never_followed(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.fail_first, receiver.fail_status = 1, 307  # back to itself: a follow would land
    with pytest.raises(httpx.HTTPStatusError):
        await post(poster(http, loopback=True), receiver.url)
    assert receiver.refused == 1 and receiver.verified == []


async def test_a_name_that_resolves_inside_is_refused_and_recorded(
    notifier_engine: AsyncEngine, receiver: Receiver, http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    inside = {"ten": (f"https://ten.example.test/t0ken-{next_urn()}", "a private address"),
              "loop": (f"https://loop.example.test:{port}/hook", "a loopback address"),
              "meta": ("https://meta.example.test/latest", "a cloud metadata address")}
    schools = {key: await add_school(notifier_engine, webhook_url=url)
               for key, (url, _) in inside.items()}
    async with notifier_engine.begin() as conn:
        for school in schools.values():
            await conn.execute(insert(webhook_deliveries).values(
                school_urn=school.urn, body=b"{}", next_attempt_at=LONG_AGO,
                created_at=LONG_AGO))
    # as production has it: no loopback; DNS now answers addresses inside for those names
    sender = Dispatcher(
        engine=notifier_engine, clock=Clock(LONG_AGO), portal_base_url="https://p.test",
        mailer=SmtpMailer(host="127.0.0.1", port=9, sender="d@test"), max_attempts=1,
        webhooks=poster(http, loopback=False, ten_example_test=["93.184.216.34", "10.0.0.7"],
                        loop_example_test=["127.0.0.1"],
                        meta_example_test=["169.254.169.254"]))
    with caplog.at_level(logging.INFO):
        while await sender.deliver_one_webhook():
            pass
    async with notifier_engine.connect() as conn:
        rows = {r.school_urn: r for r in (await conn.execute(select(webhook_deliveries).where(
            webhook_deliveries.c.school_urn.in_([s.urn for s in schools.values()])))).all()}
    for key, (_, why) in inside.items():
        row = rows[schools[key].urn]
        assert (row.status, row.attempts) == ("dead", 1)
        assert row.last_error == f"refused: the host resolves to {why}"
    assert receiver.verified == [] and receiver.refused == 0  # never reached
    assert "t0ken" not in caplog.text and "example.test" not in caplog.text


def _no_loopback(settings: Settings) -> dict[str, Any]:
    return settings.model_dump() | {"webhook_allow_loopback": False}


@pytest.fixture
def registry_settings(settings: Settings) -> Settings:
    """The registry under test as production has it: no loopback webhooks."""
    return Settings(**_no_loopback(settings))


REFUSED = [
    ("http://127.0.0.1:9000/hook", "must be an https URL"),
    ("http://hooks.example/in", "must be an https URL"),
    ("https://2130706433/", "must not name a loopback address"),
    ("https://0x7f.1/hook", "must not name a loopback address"),
    ("https://[::ffff:127.0.0.1]/", "must not name a loopback address"),
    ("https://localhost/hook", "must not name a loopback address"),
    ("https://169.254.169.254/latest/meta-data/", "must not name a cloud metadata address"),
    ("https://10.1.2.3/hook", "must not name a private address"),
    ("https://user:pw@hooks.example/in", "must not carry credentials"),
]


@pytest.mark.parametrize(("url", "message"), REFUSED, ids=[u for u, _ in REFUSED])
async def test_a_school_webhook_inside_is_refused_at_registration(
    registry: httpx.AsyncClient, admin: dict[str, str], url: str, message: str
) -> None:
    body = school_body(webhook={"url": url, "secret": "s" * 32})
    resp = await registry.put(f"/v1/schools/{next_urn()}", json=body, headers=admin)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    [error] = resp.json()["errors"]  # pydantic's own say "Value error, ..."
    assert (error["field"], error["message"].removeprefix("Value error, ")) == (
        "webhook.url", message)
    assert "pw@" not in resp.text


async def test_receipts_webhooks_inside_are_refused_unless_loopback_is_allowed(
    settings: Settings
) -> None:
    code = next_force("SF")
    await register_force(settings, code)
    path, headers = f"/v1/forces/{code}/receipts-webhook", bearer(police(code))
    async with running(build_app(IngestSettings(**_no_loopback(settings)))) as api:
        for url, message in REFUSED:
            resp = await api.put(path, json={"url": url, "secret": SECRET}, headers=headers)
            assert resp.status_code == 422, (url, resp.text)
            assert message in resp.text and "pw@" not in resp.text
        ok = await api.put(path, json={"url": "https://hooks.example/in", "secret": SECRET},
                           headers=headers)
        assert ok.status_code == 201, ok.text
    async with running(build_app(IngestSettings(**settings.model_dump()))) as api:
        local = await api.put(path, json={"url": "http://127.0.0.1:9000/hook",
                                          "secret": SECRET}, headers=headers)
        assert local.status_code == 200, local.text  # the tests' settings allow loopback


def test_production_settings_post_to_no_loopback() -> None:
    production = NotifierSettings(env="production", child_key_secret="k" * 40,
                                  kafka_username="notifier", kafka_password="p",
                                  service_desk_email="desk@council.example")
    assert production.webhook_allow_loopback is False
