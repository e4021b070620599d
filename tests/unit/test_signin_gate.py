"""The sign-in gate, the address a sign-in is counted against, and what an event may hold."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from services.identity.passwords import GateFull, SignInGate
from services.identity.security_events import (
    UNKNOWN_ADDRESS,
    client_address,
    printable_agent,
    trusted_networks,
)
from services.identity.settings import IdentitySettings
from services.identity.throttle import address_key

LOOPBACK = trusted_networks(["127.0.0.1/32", "::1/128"])


async def test_the_gate_admits_its_slots_queues_a_few_and_refuses_the_rest_at_once() -> None:
    gate, release = SignInGate(concurrency=1, max_waiting=1), asyncio.Event()
    admitted: list[str] = []

    async def sign_in(name: str) -> None:
        async with gate.admit():
            admitted.append(name)
            await release.wait()

    first = asyncio.create_task(sign_in("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(sign_in("second"))  # waits for the slot
    await asyncio.sleep(0)
    assert admitted == ["first"]
    with pytest.raises(GateFull):
        async with gate.admit():
            pytest.fail("a third sign-in was admitted past a full queue")
    release.set()
    await asyncio.gather(first, second)
    assert admitted == ["first", "second"]
    async with gate.admit():  # free again once they are done
        pass


@pytest.mark.parametrize(("peer", "claimed", "expected"), [
    ("203.0.113.9", "10.1.2.3", "203.0.113.9"),
    ("127.0.0.1", "10.1.2.3", "10.1.2.3"),
    ("::1", "2001:db8::7", "2001:db8::7"),
    ("127.0.0.1", "10.1.2.3, 10.9.9.9", "127.0.0.1"),
    ("127.0.0.1", None, "127.0.0.1"),
    (None, "10.1.2.3", UNKNOWN_ADDRESS),
    ("testclient", "10.1.2.3", UNKNOWN_ADDRESS),
], ids=["untrusted-peer-claim-ignored", "relay-on-loopback-believed", "relay-on-ipv6-loopback",
        "a-list-is-no-address", "relay-without-claim", "no-peer", "peer-not-an-address"])
def test_only_a_trusted_relay_says_where_a_sign_in_came_from(
    peer: str | None, claimed: str | None, expected: str
) -> None:
    assert client_address(peer, claimed, LOOPBACK) == expected


def test_no_proxy_is_trusted_when_none_is_configured() -> None:
    assert client_address("127.0.0.1", "10.1.2.3", trusted_networks([])) == "127.0.0.1"


@pytest.mark.parametrize(("address", "key"), [
    ("10.1.2.3", "10.1.2.3"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
    ("::ffff:10.1.2.3", "10.1.2.3"),
    (UNKNOWN_ADDRESS, UNKNOWN_ADDRESS),
], ids=["ipv4", "ipv6-by-its-64", "same-64-same-count", "ipv4-mapped", "unknown"])
def test_failures_are_counted_by_address_and_ipv6_by_its_64(address: str, key: str) -> None:
    assert address_key(address) == key


def test_a_user_agent_is_stored_printable_and_short() -> None:
    assert printable_agent("Mozilla\x1b[31m/5.0\n" + "x" * 500) == "Mozilla[31m/5.0" + "x" * 185
    assert printable_agent(None) == ""


def test_a_trusted_proxy_that_is_no_network_is_refused() -> None:
    with pytest.raises(ValidationError, match="not an IP address or network"):
        IdentitySettings(env="development", identity_trusted_proxies=["loopback"])


@pytest.mark.parametrize(("service", "believed"), [("identity", False), ("ingest", True)])
def test_identity_is_served_without_believing_x_forwarded_for(
    service: str, believed: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    import uvicorn

    from services.cli import main

    served: dict[str, object] = {}
    monkeypatch.setenv("DAYBREAK_ENV", "development")
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.update(kwargs))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert main(["serve", service]) == 0
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert served["proxy_headers"] is believed
