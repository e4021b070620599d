"""Every protected route refuses every bad credential: 401 (API) or the sign-in page (portal)."""

from __future__ import annotations

import pytest

from tests.security.matrix import PORTAL, Rule, protected
from tests.security.send import api_call, portal_call, portal_refusal_problems, refusal_problems
from tests.security.tokens import bad_tokens
from tests.security.world import World

pytestmark = pytest.mark.integration
ROUTES = protected()


def _id(key: tuple[str, str, str]) -> str:
    return " ".join(key)


def _api_credentials(
    world: World, service: str
) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Name → (headers, cookies): nothing, a bad bearer token, or a good token sent wrongly."""
    good = world.tokens["admin"]
    creds: dict[str, tuple[dict[str, str], dict[str, str]]] = {
        "no credentials": ({}, {}),
        "session cookie instead of bearer": ({}, {"daybreak_session": good}),
        "token under Basic": ({"Authorization": f"Basic {good}"}, {}),
        "empty bearer": ({"Authorization": "Bearer "}, {}),
    }
    for name, token in bad_tokens(world.tokens["dsl_x"], service).items():
        creds[name] = ({"Authorization": f"Bearer {token}"}, {})
    return creds


@pytest.mark.parametrize(("key", "rule"), ROUTES, ids=[_id(k) for k, _ in ROUTES])
async def test_bad_credentials_are_refused(
    world: World, key: tuple[str, str, str], rule: Rule
) -> None:
    service, method, path = key
    failures: list[str] = []
    if rule.access == PORTAL:
        sessions = bad_tokens(world.tokens["dsl_x"], service) | {"no session": ""}
        for name, token in sessions.items():
            resp = await portal_call(world, method, path, rule.attack, token or None)
            failures += [f"{name}: {p}" for p in
                         portal_refusal_problems(resp, 303, world.marks())]
    else:
        for name, (headers, cookies) in _api_credentials(world, service).items():
            resp = await api_call(world, service, method, path, rule.attack, headers, cookies)
            failures += [f"{name}: {p}" for p in refusal_problems(resp, 401, world.marks())]
    assert not failures, "\n".join(failures)

