"""Every route of every service has a security decision; the public ones show no data."""

from __future__ import annotations

import re

import pytest

from tests.security.matrix import METRICS, PUBLIC, SERVICES, decisions, routes_of
from tests.security.send import fill, leaks
from tests.security.world import World
from tests.support.api import metrics_auth

pytestmark = pytest.mark.integration
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def test_every_route_of_every_service_is_in_the_matrix(world: World) -> None:
    served = set().union(*(routes_of(name, world.apps[name]) for name in SERVICES))
    decided = set(decisions())
    assert not served - decided, f"routes with no security decision: {sorted(served - decided)}"
    assert not decided - served, f"decisions for routes that are gone: {sorted(decided - served)}"
    for key, rule in decisions().items():
        assert rule.reason if rule.access in (PUBLIC, METRICS) else rule.roles, key


async def test_public_pages_answer_without_credentials_and_carry_no_child_data(
    world: World,
) -> None:
    expected = {"/portal/link/{token}": 303, "/v1/sessions": 401}  # own sessions: a token
    ids = [v.encode() for v in world.params.values() if UUID.fullmatch(v.encode())]
    for (service, method, path), rule in sorted(decisions().items()):
        if rule.access != PUBLIC or method != "GET":
            continue
        client = world.clients[service]
        client.cookies.clear()
        resp = await client.get(fill(path, world.params))
        assert resp.status_code == expected.get(path, 200), (service, path, resp.text[:200])
        assert not leaks(resp, world.marks() + ids), (service, path)


async def test_metrics_after_traffic_name_no_child_object_or_person(world: World) -> None:
    # public by decision: Prometheus scrapes it unauthenticated, so it must stay dull
    for service in SERVICES:
        await world.clients[service].get("/v1/notifications/not-a-uuid")
    ids = [v.encode() for v in world.params.values() if UUID.fullmatch(v.encode())]
    for service in SERVICES:
        text = (await world.clients[service].get("/metrics", headers=metrics_auth())).content
        assert b"daybreak_http_request_seconds" in text
        found = [m for m in [*world.marks(), *ids, b"@security.test", b"not-a-uuid"]
                 if m.lower() in text.lower()]
        assert not found, f"{service} metrics name {found}"
