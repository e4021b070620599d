"""Token and session endpoints against the real database, relayed by ingest to the issuer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest

from services.common.settings import Settings
from services.ingest.main import build_app
from tests.support.api import basic, issuer_for, new_police_client, new_user, running
from tests.support.ids import next_email

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(build_app(settings, issuer=issuer_for(settings))) as client:
        yield client


async def test_client_credentials_give_a_short_lived_scoped_token(api, settings) -> None:
    client_id, secret = await new_police_client(settings, "WMP")
    resp = await api.post("/v1/token", data={"grant_type": "client_credentials"},
                          headers=basic(client_id, secret))
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "incidents:write"
    assert 0 < body["expires_in"] <= 3600
    assert resp.headers["cache-control"] == "no-store"


async def test_wrong_secret_unknown_client_and_wrong_grant(api, settings) -> None:
    client_id, _ = await new_police_client(settings, "WMP")
    wrong = await api.post("/v1/token", data={"grant_type": "client_credentials"},
                           headers=basic(client_id, "nope"))
    unknown = await api.post("/v1/token", data={"grant_type": "client_credentials"},
                             headers=basic("nobody", "nope"))
    grant = await api.post("/v1/token", data={"grant_type": "password"},
                           headers=basic(client_id, "nope"))
    assert (wrong.status_code, unknown.status_code, grant.status_code) == (401, 401, 400)
    assert wrong.json() == {"error": "invalid_client"}


async def test_client_brute_force_is_rate_limited_even_with_the_right_secret(api, settings) -> None:
    client_id, secret = await new_police_client(settings, "WMP")
    codes = [
        (await api.post("/v1/token", data={"grant_type": "client_credentials"},
                        headers=basic(client_id, f"guess{i}"))).status_code
        for i in range(settings.login_max_failures)
    ]
    assert codes == [401] * settings.login_max_failures
    right = await api.post("/v1/token", data={"grant_type": "client_credentials"},
                           headers=basic(client_id, secret))
    assert right.status_code == 429


async def test_session_with_password_and_totp(api, settings) -> None:
    email = f"dsl{datetime.now(UTC).timestamp()}@school.example"
    _, totp_secret = await new_user(settings, email=email, password=PASSWORD, role="dsl",
                                    school_urns=["103456"], la_codes=[])
    code = pyotp.TOTP(totp_secret).now()
    resp = await api.post("/v1/sessions", json={"email": email, "password": PASSWORD,
                                                "totp": code})
    assert resp.status_code == 200
    assert resp.json()["expires_in"] > 0
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    replay = await api.post("/v1/sessions", json={"email": email, "password": PASSWORD,
                                                  "totp": code})
    assert replay.status_code == 401


async def test_session_failures_are_401_then_429(api, settings) -> None:
    email = f"la{datetime.now(UTC).timestamp()}@la.example"
    _, totp_secret = await new_user(settings, email=email, password=PASSWORD, role="la_officer",
                                    school_urns=[], la_codes=["332"])
    stale = pyotp.TOTP(totp_secret).at(datetime.now(UTC) - timedelta(minutes=10))
    for totp in [stale, "000000", "111111", "222222", "333333"]:
        resp = await api.post("/v1/sessions", json={"email": email, "password": PASSWORD,
                                                    "totp": totp})
        assert resp.status_code == 401
        assert resp.headers["content-type"].startswith("application/problem+json")
    good = pyotp.TOTP(totp_secret).now()
    blocked = await api.post("/v1/sessions", json={"email": email, "password": PASSWORD,
                                                   "totp": good})
    assert blocked.status_code == 429


async def test_users_create_prints_the_totp_uri_and_writes_an_enrolment_qr(
    settings, tmp_path, monkeypatch, capsys
) -> None:
    import io
    import json

    from services.cli import main

    for key, value in {"DAYBREAK_IDENTITY_DATABASE_URL": settings.identity_database_url,
                       "DAYBREAK_ENV": "development"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough passphrase\n"))
    png = tmp_path / "enrol.png"
    email = next_email("qr", "school.example")
    code = await asyncio.to_thread(main, ["users", "create", "--email", email, "--role", "dsl",
                                          "--school", "103456", "--qr", str(png)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["totp_uri"].startswith("otpauth://totp/")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 200
