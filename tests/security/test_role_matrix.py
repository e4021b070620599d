"""Every protected route and every principal: only the entitled owner gets through the gate."""

from __future__ import annotations

import httpx
import pytest

from services.common.security import ROLE_AUDIENCES
from tests.security.matrix import PORTAL, Rule, protected
from tests.security.send import api_call, portal_call, portal_refusal_problems, refusal_problems
from tests.security.world import PRINCIPALS, World

pytestmark = pytest.mark.integration
ROUTES = protected()


def expectation(service: str, rule: Rule, principal: str) -> tuple[int, bool]:
    """The status the principal must get, and whether it is the object's entitled owner.

    A token whose audience does not name the service is no credential there at all (401);
    one that does, for a role the route does not admit, is forbidden (403)."""
    if service not in ROLE_AUDIENCES[PRINCIPALS[principal]]:
        return (303 if rule.access == PORTAL else 401), False
    if PRINCIPALS[principal] not in rule.roles:
        return (rule.refused if rule.access == PORTAL else 403), False
    if rule.owners is not None and principal not in rule.owners:
        return rule.foreign, False
    return rule.probe_status, True


async def _send(world: World, key: tuple[str, str, str], rule: Rule, principal: str,
                owner: bool) -> httpx.Response:
    service, method, path = key
    call = rule.probe if owner and rule.probe is not None else rule.attack
    if rule.access == PORTAL:
        return await portal_call(world, method, path, call, world.tokens[principal])
    return await api_call(world, service, method, path, call, world.bearer(principal))


@pytest.mark.parametrize(("key", "rule"), ROUTES, ids=[" ".join(k) for k, _ in ROUTES])
async def test_only_entitled_principals_pass(
    world: World, key: tuple[str, str, str], rule: Rule
) -> None:
    failures: list[str] = []
    for principal in PRINCIPALS:
        status, owner = expectation(key[0], rule, principal)
        resp = await _send(world, key, rule, principal, owner)
        if owner:
            # the control: the route and object are real, so the refusals below mean something
            if resp.status_code != status:
                failures.append(f"{principal} (entitled): {resp.status_code} != {status}")
            continue
        judge = portal_refusal_problems if rule.access == PORTAL else refusal_problems
        failures += [f"{principal}: {p}" for p in judge(resp, status, world.marks())]
    assert not failures, "\n".join(failures)


def test_every_route_has_an_entitled_principal_and_someone_refused() -> None:
    for key, rule in ROUTES:
        outcomes = [expectation(key[0], rule, p)[1] for p in PRINCIPALS]
        assert any(outcomes) and not all(outcomes), key
