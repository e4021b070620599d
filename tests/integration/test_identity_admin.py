"""The identity service's admin API in-process: people and police clients, each change
recorded, disabled accounts refused at sign-in, rotated secrets, and nobody else let in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pyotp
import pytest
from sqlalchemy import select

from services.common.db import standalone_uow
from services.common.settings import Settings
from services.identity.main import build_app as build_identity
from services.identity.models import account_changes
from tests.support.api import basic, running
from tests.support.clock import Clock
from tests.support.ids import next_email, next_urn
from tests.support.tokens import bearer, identity_settings_for, person

pytestmark = pytest.mark.integration
FORM = {"grant_type": "client_credentials"}
ROUTES = [("GET", "/v1/users"), ("POST", "/v1/users"), ("POST", "/v1/users/{u}/disable"),
          ("POST", "/v1/users/{u}/enable"), ("POST", "/v1/users/{u}/reset-password"),
          ("POST", "/v1/users/{u}/reenrol-totp"), ("GET", "/v1/clients"),
          ("POST", "/v1/clients"), ("POST", "/v1/clients/{c}/disable"),
          ("POST", "/v1/clients/{c}/enable"), ("POST", "/v1/clients/{c}/rotate-secret")]


@pytest.fixture
async def identity(settings: Settings, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    app = build_identity(identity_settings_for(settings))
    app.state.ctx.clock = clock
    async with running(app) as client:
        yield client


@pytest.fixture
def admin() -> dict[str, str]:
    return bearer(person("admin"))


async def new_dsl(identity: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    resp = await identity.post("/v1/users", headers=admin, json={
        "email": next_email("dsl"), "role": "dsl", "school_urns": [next_urn()]})
    assert resp.status_code == 201, resp.text
    made: dict[str, str] = resp.json()
    return made


async def session(identity: httpx.AsyncClient, clock: Clock, email: str, password: str,
                  totp_uri: str) -> int:
    clock.now += timedelta(seconds=30)  # a fresh TOTP step each time
    code = pyotp.parse_uri(totp_uri).at(clock.now)
    resp = await identity.post("/v1/sessions", json={
        "email": email, "password": password, "totp": code})
    identity.cookies.clear()
    return resp.status_code


async def test_a_created_person_signs_in_once_shown_their_password_and_code(
    identity, admin, clock
) -> None:
    resp = await identity.post("/v1/users", headers=admin, json={
        "email": next_email("dsl"), "role": "dsl", "school_urns": [next_urn()]})
    assert resp.status_code == 201 and resp.headers["cache-control"] == "no-store"
    made = resp.json()
    assert len(made["password"]) >= 12 and made["totp_uri"].startswith("otpauth://totp/")
    assert await session(identity, clock, made["email"], made["password"],
                         made["totp_uri"]) == 200
    listed = (await identity.get("/v1/users", headers=admin, params={"limit": 200})).json()
    [mine] = [u for u in listed["users"] if u["id"] == made["id"]]
    assert set(mine) == {"id", "email", "role", "school_urns", "la_codes", "created_at",
                         "disabled_at"}
    assert made["password"] not in str(listed) and "totp" not in str(listed)


async def test_people_are_listed_a_page_at_a_time(identity, admin) -> None:
    for _ in range(3):
        await new_dsl(identity, admin)
    seen, cursor = [], None
    for _ in range(500):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await identity.get("/v1/users", headers=admin, params=params)).json()
        assert len(page["users"]) <= 2
        seen += [u["email"] for u in page["users"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) >= 3
    bad = await identity.get("/v1/users", headers=admin, params={"cursor": "%%%"})
    assert bad.status_code == 422


async def test_a_disabled_person_cannot_sign_in_until_enabled(identity, admin, clock) -> None:
    made = await new_dsl(identity, admin)
    off = await identity.post(f"/v1/users/{made['id']}/disable", headers=admin)
    assert off.status_code == 200 and off.json()["disabled_at"]
    assert await session(identity, clock, made["email"], made["password"],
                         made["totp_uri"]) == 401
    on = await identity.post(f"/v1/users/{made['id']}/enable", headers=admin)
    assert on.status_code == 200 and on.json()["disabled_at"] is None
    assert await session(identity, clock, made["email"], made["password"],
                         made["totp_uri"]) == 200


async def test_a_reset_password_and_a_new_totp_replace_the_old_ones(
    identity, admin, clock
) -> None:
    made = await new_dsl(identity, admin)
    reset = await identity.post(f"/v1/users/{made['id']}/reset-password", headers=admin)
    assert reset.status_code == 200 and reset.headers["cache-control"] == "no-store"
    password = reset.json()["password"]
    assert password != made["password"]
    assert await session(identity, clock, made["email"], made["password"],
                         made["totp_uri"]) == 401
    assert await session(identity, clock, made["email"], password, made["totp_uri"]) == 200
    again = await identity.post(f"/v1/users/{made['id']}/reenrol-totp", headers=admin)
    assert again.status_code == 200 and again.headers["cache-control"] == "no-store"
    uri = again.json()["totp_uri"]
    assert pyotp.parse_uri(uri).secret != pyotp.parse_uri(made["totp_uri"]).secret
    assert await session(identity, clock, made["email"], password, made["totp_uri"]) == 401
    assert await session(identity, clock, made["email"], password, uri) == 200


async def test_a_rotated_secret_replaces_the_old_and_a_disabled_client_gets_no_token(
    identity, admin
) -> None:
    made = await identity.post("/v1/clients", headers=admin, json={"force_code": "wmp"})
    assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
    client_id, old = made.json()["client_id"], made.json()["client_secret"]
    assert made.json()["force_code"] == "WMP"
    assert (await identity.post("/v1/token", data=FORM, headers=basic(client_id, old))
            ).status_code == 200
    rotated = await identity.post(f"/v1/clients/{client_id}/rotate-secret", headers=admin)
    assert rotated.status_code == 200 and rotated.json()["secret_rotated_at"]
    new = rotated.json()["client_secret"]
    assert (await identity.post("/v1/token", data=FORM, headers=basic(client_id, old))
            ).status_code == 401
    assert (await identity.post("/v1/token", data=FORM, headers=basic(client_id, new))
            ).status_code == 200
    assert (await identity.post(f"/v1/clients/{client_id}/disable", headers=admin)
            ).status_code == 200
    assert (await identity.post("/v1/token", data=FORM, headers=basic(client_id, new))
            ).status_code == 401
    assert (await identity.post(f"/v1/clients/{client_id}/enable", headers=admin)
            ).status_code == 200
    assert (await identity.post("/v1/token", data=FORM, headers=basic(client_id, new))
            ).status_code == 200
    listed = (await identity.get("/v1/clients", headers=admin)).json()["clients"]
    [mine] = [c for c in listed if c["client_id"] == client_id]
    assert set(mine) == {"client_id", "force_code", "created_at", "disabled_at",
                         "secret_rotated_at"} and new not in str(listed)


async def test_every_change_is_recorded_with_who_and_no_secret(
    identity, settings, clock
) -> None:
    actor = person("admin", subject=str(uuid.uuid4()))
    admin = bearer(actor)
    made = await new_dsl(identity, admin)
    secrets_shown = [made["password"], pyotp.parse_uri(made["totp_uri"]).secret]
    for action in ("disable", "enable", "reset-password", "reenrol-totp"):
        resp = await identity.post(f"/v1/users/{made['id']}/{action}", headers=admin)
        body = resp.json()
        secrets_shown += [body.get("password", ""), body.get("totp_uri", "")]
    async with standalone_uow(settings, "identity") as uow:
        rows = (await uow.conn.execute(select(account_changes).where(
            account_changes.c.target_id == made["id"]).order_by(account_changes.c.id))).all()
    assert [r.action for r in rows] == ["user_created", "user_disabled", "user_enabled",
                                        "password_reset", "totp_reenrolled"]
    assert {r.actor for r in rows} == {actor.subject}
    assert all(r.changed_at == clock.now for r in rows[:1])
    assert rows[0].facts["role"] == "dsl"
    recorded = str([tuple(r) for r in rows])
    assert not [s for s in secrets_shown if s and s in recorded]


async def test_refusals_say_why_and_change_nothing(identity, admin) -> None:
    made = await new_dsl(identity, admin)
    again = await identity.post("/v1/users", headers=admin, json={
        "email": made["email"], "role": "dsl", "school_urns": [next_urn()]})
    assert again.status_code == 409
    no_school = await identity.post("/v1/users", headers=admin, json={
        "email": next_email("dsl"), "role": "dsl"})
    assert no_school.status_code == 422 and "school" in no_school.json()["detail"]
    missing = await identity.post(f"/v1/users/{uuid.uuid4()}/disable", headers=admin)
    assert missing.status_code == 404
    assert (await identity.post("/v1/users/not-a-uuid/enable", headers=admin)).status_code == 404
    assert (await identity.post("/v1/clients/nobody/rotate-secret", headers=admin)
            ).status_code == 404
    bad_force = await identity.post("/v1/clients", headers=admin, json={"force_code": "W1"})
    assert bad_force.status_code == 422


async def test_an_admin_cannot_disable_themselves(identity, settings) -> None:
    made = await new_dsl(identity, bearer(person("admin")))
    me = bearer(person("admin", subject=made["id"]))  # their own id as the token's subject
    resp = await identity.post(f"/v1/users/{made['id']}/disable", headers=me)
    assert resp.status_code == 409


@pytest.mark.parametrize("role", ["dsl", "la_officer", "auditor"])
async def test_only_admins_may_use_the_admin_api(identity, admin, role) -> None:
    made = await new_dsl(identity, admin)
    client = (await identity.post("/v1/clients", headers=admin, json={"force_code": "GMP"})
              ).json()["client_id"]
    someone = person(role, schools=[next_urn()], las=["332"])
    addressed = bearer(someone, audience=["identity"])  # a token for identity, wrong role
    usual = bearer(someone)  # the role's own audience, which does not name identity
    for method, path in ROUTES:
        url = path.format(u=made["id"], c=client)
        body = {"force_code": "WMP"} if url == "/v1/clients" else None
        refused = await identity.request(method, url, headers=addressed, json=body)
        assert refused.status_code == 403, (method, url, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (await identity.request(method, url, headers=usual, json=body)
                ).status_code == 401
        assert (await identity.request(method, url, json=body)).status_code == 401
