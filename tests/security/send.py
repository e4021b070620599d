"""Send a matrix call to a running service and judge what came back."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

from services.common.auth_api import SESSION_COOKIE, host_cookie
from services.notifier.portal import CSRF_COOKIE
from tests.security.matrix import Call
from tests.security.world import World

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def fill(value: Any, params: dict[str, str]) -> Any:
    """Put the world's real object ids into a path, body or query template."""
    if isinstance(value, str):
        return value.format(**params)
    if isinstance(value, dict):
        return {k: fill(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, params) for v in value]
    return value


async def api_call(world: World, service: str, method: str, path: str, call: Call,
                   headers: dict[str, str] | None = None,
                   cookies: dict[str, str] | None = None) -> httpx.Response:
    """One request to a service's API with the given credentials (and nothing else)."""
    sent = dict(headers or {})
    if call.content_type:
        sent["Content-Type"] = call.content_type
    if cookies:
        sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    client = world.clients[service]
    client.cookies.clear()
    return await client.request(
        method, fill(path, world.params), headers=sent, params=fill(call.params, world.params),
        json=fill(call.json, world.params), content=call.content)


async def portal_call(world: World, method: str, path: str, call: Call,
                      session: str | None) -> httpx.Response:
    """One request to the portal with a fresh cookie jar: the session (if any) and CSRF."""
    csrf = secrets.token_urlsafe(16)
    cookies = {host_cookie(world.settings, CSRF_COOKIE): csrf} | (
        {host_cookie(world.settings, SESSION_COOKIE): session} if session else {})
    transport = httpx.ASGITransport(app=world.apps["notifier"])
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 cookies=cookies) as client:
        form = None if call.form is None else fill(call.form, world.params) | {"csrf": csrf}
        return await client.request(method, fill(path, world.params), data=form)


def leaks(resp: httpx.Response, marks: list[bytes]) -> list[str]:
    """The canary names or birth dates found in the response, headers included."""
    raw = resp.content + b"\n".join(v.encode() for v in resp.headers.values())
    return [m.decode() for m in marks if m.lower() in raw.lower()]


def refusal_problems(resp: httpx.Response, status: int, marks: list[bytes]) -> list[str]:
    """Why an API refusal is not a clean problem+json with the expected status and no data."""
    found = [] if resp.status_code == status else [f"status {resp.status_code} != {status}"]
    if not resp.headers.get("content-type", "").startswith("application/problem+json"):
        found.append(f"content-type {resp.headers.get('content-type')}")
    else:
        extra = set(json.loads(resp.content)) - PROBLEM_KEYS
        found += [f"problem carries {sorted(extra)}"] if extra else []
    if status == 401 and not resp.headers.get("www-authenticate", "").startswith("Bearer"):
        found.append("no WWW-Authenticate: Bearer challenge")
    found += [f"leaks {m}" for m in leaks(resp, marks)]
    return found


def portal_refusal_problems(resp: httpx.Response, status: int, marks: list[bytes]) -> list[str]:
    """Why a portal refusal is not a redirect to sign-in (or a bare error page) with no data."""
    found = [] if resp.status_code == status else [f"status {resp.status_code} != {status}"]
    if status == 303 and resp.headers.get("location") != "/portal/sign-in":
        found.append(f"location {resp.headers.get('location')}")
    found += [f"leaks {m}" for m in leaks(resp, marks)]
    return found
