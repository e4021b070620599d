"""No page of any service loads a script from another origin; /metrics answers its token alone."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.security.matrix import BEARER, METRICS, PORTAL, SERVICES, Rule, decisions
from tests.security.send import api_call, portal_call, refusal_problems
from tests.security.world import PRINCIPALS, World
from tests.support.api import metrics_auth

pytestmark = pytest.mark.integration
# a script, stylesheet or module import whose address names a host: (https:)//host/...
EXTERNAL = [
    re.compile(rb"<script\b[^>]*\bsrc\s*=\s*[\"']?\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I),
    re.compile(rb"<link\b[^>]*\bhref\s*=\s*[\"']?\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I),
    re.compile(rb"\bimport\b[^;\n]*[\"'](?:https?:)?//", re.I),
]


def _entitled(rule: Rule) -> str | None:
    """A principal the rule lets through (its owner, when it has owners)."""
    return next((p for p, role in PRINCIPALS.items() if role in rule.roles
                 and (rule.owners is None or p in rule.owners)), None)


async def _fetch(world: World, key: tuple[str, str, str], rule: Rule) -> httpx.Response:
    service, method, path = key
    call = rule.probe or rule.attack
    if rule.access == METRICS:
        return await api_call(world, service, method, path, call, metrics_auth())
    principal = _entitled(rule)
    if rule.access == PORTAL:
        return await portal_call(world, method, path, call,
                                 world.tokens[principal] if principal else None)
    headers = world.bearer(principal) if rule.access == BEARER and principal else {}
    return await api_call(world, service, method, path, call, headers)


async def test_no_page_of_any_service_references_a_script_from_another_origin(
    world: World,
) -> None:
    found, pages = [], 0
    for key, rule in sorted(decisions().items()):
        if key[1] != "GET":
            continue
        resp = await _fetch(world, key, rule)
        kind = resp.headers.get("content-type", "")
        if "html" in kind or "javascript" in kind:
            pages += 1
            found += [f"{' '.join(key)}: {m.group(0)[:80]!r}" for pattern in EXTERNAL
                      for m in pattern.finditer(resp.content)]
        policy = resp.headers.get("content-security-policy", "")
        found += [f"{' '.join(key)}: CSP allows {src}" for src in
                  re.findall(r"(?:https?:)?//[^\s;']+|\*", policy)]
    assert pages > 10  # the portal's pages were rendered, not refused
    assert not found, "\n".join(found)


async def test_api_docs_pages_are_off_on_every_service_and_the_contract_stays(
    world: World,
) -> None:
    for service in SERVICES:
        client = world.clients[service]
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert (await client.get(path)).status_code == 404, (service, path)
        assert (await client.get("/openapi.json")).json()["openapi"].startswith("3.")


async def test_metrics_answer_the_metrics_token_alone(world: World) -> None:
    token = metrics_auth()["Authorization"].removeprefix("Bearer ")
    refused = {
        "no credentials": {},
        "a person's token": world.bearer("admin"),
        "a police token": world.bearer("police_a"),
        "the token one character short": {"Authorization": f"Bearer {token[:-1]}"},
        "the token under Basic": {"Authorization": f"Basic {token}"},
        "non-ASCII": {"Authorization": "Bearer \u00e9t\u00e9".encode()},
    }
    failures = []
    for service in SERVICES:
        client = world.clients[service]
        for name, headers in refused.items():
            client.cookies.clear()
            resp = await client.get("/metrics", headers=headers)
            failures += [f"{service} {name}: {p}" for p in refusal_problems(resp, 401, [])]
        ok = await client.get("/metrics", headers=metrics_auth())
        if ok.status_code != 200 or b"daybreak_http_request_seconds" not in ok.content:
            failures.append(f"{service} with the token: {ok.status_code}")
    assert not failures, "\n".join(failures)


async def test_every_route_of_every_service_answers_nosniff(world: World) -> None:
    """ASVS 3.4.4: no body is ever sniffed into another type than it says, whether the
    route answered, refused or failed."""
    missing, seen = [], 0
    for key, rule in sorted(decisions().items()):
        if key[1] != "GET":
            continue
        resp = await _fetch(world, key, rule)
        seen += 1
        if resp.headers.get("x-content-type-options") != "nosniff":
            missing.append(f"{' '.join(key)} ({resp.status_code})")
    assert seen > 30
    assert not missing, "\n".join(missing)
