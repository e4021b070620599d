"""TOTP secrets sealed at rest with a key file outside the database (issue 15 finding 8)."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import uuid
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.settings import MissingSetting, Settings
from services.identity.main import build_app as build_identity
from services.identity.models import users
from services.identity.passwords import hash_secret
from services.identity.totp_vault import (
    TotpKeyError,
    TotpVault,
    create_key_file,
    load_key_file,
    totp_vault,
)
from tests.support.api import new_user, running
from tests.support.ids import next_email
from tests.support.tokens import identity_settings_for

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


async def _row(engine: AsyncEngine, user_id: str) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(select(users).where(
            users.c.user_id == uuid.UUID(user_id)))).one()


async def test_a_new_users_totp_secret_is_stored_sealed_for_that_user_alone(
    settings: Settings, engine: AsyncEngine
) -> None:
    user_id, secret = await new_user(settings, email=next_email("seal", "school.example"),
                                     password=PASSWORD, role="dsl", school_urns=["103456"],
                                     la_codes=[])
    row = await _row(engine, user_id)
    assert row.totp_secret is None  # type: ignore[attr-defined]
    sealed: bytes = row.totp_secret_enc  # type: ignore[attr-defined]
    assert secret.encode() not in sealed
    vault = totp_vault(settings)
    assert vault.open(uuid.UUID(user_id), sealed) == secret
    with pytest.raises(TotpKeyError):  # the user id is the associated data: no row swapping
        vault.open(uuid.uuid4(), sealed)
    with pytest.raises(TotpKeyError):  # and the database alone opens nothing
        TotpVault(b"\x00" * 32).open(uuid.UUID(user_id), sealed)


async def _legacy_user(engine: AsyncEngine, email: str) -> tuple[uuid.UUID, str]:
    """A user as written before 0020: the TOTP secret in the clear."""
    user_id, secret = uuid.uuid4(), pyotp.random_base32()
    async with engine.begin() as conn:
        await conn.execute(insert(users).values(
            user_id=user_id, email=email, password_hash=await hash_secret(PASSWORD),
            totp_secret=secret, role="dsl", school_urns=["103456"], la_codes=[]))
    return user_id, secret


async def test_identity_seals_legacy_clear_secrets_at_startup(
    settings: Settings, engine: AsyncEngine
) -> None:
    user_id, secret = await _legacy_user(engine, next_email("legacy", "school.example"))
    async with running(build_identity(identity_settings_for(settings))):
        pass
    row = await _row(engine, str(user_id))
    assert row.totp_secret is None  # type: ignore[attr-defined]
    assert totp_vault(settings).open(user_id, row.totp_secret_enc) == secret  # type: ignore[attr-defined]


async def test_sign_in_on_a_legacy_row_works_and_seals_it(
    settings: Settings, engine: AsyncEngine
) -> None:
    email = next_email("legacy", "school.example")
    app = build_identity(identity_settings_for(settings))
    async with running(app) as client:  # startup has run: this row comes after it
        user_id, secret = await _legacy_user(engine, email)
        resp = await client.post("/v1/sessions", json={
            "email": email, "password": PASSWORD, "totp": pyotp.TOTP(secret).now()})
    assert resp.status_code == 200, resp.text
    row = await _row(engine, str(user_id))
    assert row.totp_secret is None and row.totp_secret_enc is not None  # type: ignore[attr-defined]


async def test_a_secret_sealed_under_another_key_fails_sign_in_as_a_wrong_code_would(
    settings: Settings, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    email = next_email("rekeyed", "school.example")
    user_id, secret = await new_user(settings, email=email, password=PASSWORD, role="dsl",
                                     school_urns=["103456"], la_codes=[])
    async with engine.begin() as conn:  # as if the key file were replaced by another
        await conn.execute(users.update().where(users.c.user_id == uuid.UUID(user_id)).values(
            **TotpVault(bytes(range(32))).stored(uuid.UUID(user_id), secret)))
    async with running(build_identity(identity_settings_for(settings))) as client:
        resp = await client.post("/v1/sessions", json={
            "email": email, "password": PASSWORD, "totp": pyotp.TOTP(secret).now()})
    assert resp.status_code == 401  # not a 500 that only the right password would reach
    assert "DAYBREAK_IDENTITY_TOTP_KEY_FILE" in caplog.text and secret not in caplog.text


def test_identity_will_not_start_without_its_key_file(settings: Settings,
                                                      tmp_path: Path) -> None:
    with pytest.raises(MissingSetting, match="DAYBREAK_IDENTITY_TOTP_KEY_FILE"):
        build_identity(identity_settings_for(settings.model_copy(
            update={"identity_totp_key_file": None})))
    with pytest.raises(TotpKeyError, match="cannot read"):
        build_identity(identity_settings_for(settings.model_copy(
            update={"identity_totp_key_file": str(tmp_path / "absent.key")})))


def test_the_key_file_is_made_once_mode_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "totp.key"
    assert create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    assert not create_key_file(path) and path.read_text() == first
    vault = load_key_file(path)
    user = uuid.uuid4()
    assert vault.open(user, vault.seal(user, "JBSWY3DPEHPK3PXP")) == "JBSWY3DPEHPK3PXP"
    path.write_text("not base64!\n")
    with pytest.raises(TotpKeyError, match="base64"):
        load_key_file(path)


def test_keys_totp_init_creates_the_file_the_setting_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli import main

    path = tmp_path / "identity-totp.key"
    monkeypatch.setenv("DAYBREAK_IDENTITY_TOTP_KEY_FILE", str(path))
    monkeypatch.setenv("DAYBREAK_ENV", "development")
    assert main(["keys", "totp-init"]) == 0
    assert json.loads(capsys.readouterr().out) == {"key_file": str(path), "created": True}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert main(["keys", "totp-init"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] is False


async def test_the_enrolment_qr_is_written_0600_and_never_over_a_file(
    settings: Settings, engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.cli import main

    for key, value in {"DAYBREAK_IDENTITY_DATABASE_URL": settings.identity_database_url or "",
                       "DAYBREAK_ENV": "development"}.items():
        monkeypatch.setenv(key, value)
    png = tmp_path / "enrol.png"
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    code = await asyncio.to_thread(main, [
        "users", "create", "--email", next_email("qr", "school.example"), "--role", "dsl",
        "--school", "103456", "--qr", str(png)])
    assert code == 0
    assert stat.S_IMODE(png.stat().st_mode) == 0o600
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    other = tmp_path / "taken.png"
    other.write_bytes(b"someone else's")
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    email = next_email("qr", "school.example")
    code = await asyncio.to_thread(main, [
        "users", "create", "--email", email, "--role", "dsl", "--school", "103456",
        "--qr", str(other)])
    assert code == 1 and "cannot write" in capsys.readouterr().err
    assert other.read_bytes() == b"someone else's"
    async with engine.connect() as conn:  # refused before the account was made
        assert (await conn.execute(select(users).where(users.c.email == email))).first() is None
