"""Passwords are checked for strength (zxcvbn, score 3 of 4 at least), not only for length."""

from __future__ import annotations

import asyncio
import io

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import standalone_uow
from services.common.settings import Settings
from services.identity.accounts import AccountError, create_user, new_password
from services.identity.models import users
from services.identity.strength import MIN_SCORE, weakness
from services.identity.totp_vault import totp_vault
from tests.support.ids import next_email

pytestmark = pytest.mark.integration
WEAK = ["Password1234", "qwertyuiop123", "aaaaaaaaaaaaaaaa", "iloveyou2024!", "letmein12345"]
STRONG = ["correct horse battery staple", "a long enough passphrase", "Vivid-otter-47-quarry"]


@pytest.mark.parametrize("password", WEAK)
def test_common_and_repetitive_passwords_are_weak(password: str) -> None:
    why = weakness(password, known=["someone@school.example", "dsl"])
    assert why is not None and "too easy to guess" in why
    assert password.lower() not in why.lower()  # the message never names the secret


@pytest.mark.parametrize("password", STRONG)
def test_passphrases_are_strong_enough(password: str) -> None:
    assert weakness(password, known=["someone@school.example", "dsl"]) is None


def test_a_password_made_of_the_accounts_own_address_is_weak() -> None:
    assert weakness("jane.smith2024", known=["jane.smith@school.example", "dsl"]) is not None
    assert weakness("jane.smith2024", known=["someone@school.example", "dsl"]) is None


def test_a_very_long_password_is_scored_and_generated_ones_always_pass() -> None:
    assert weakness("a" * 5000, known=[]) is not None  # scored on its start, never refused
    assert weakness("correct horse battery staple " * 40, known=[]) is None
    assert all(weakness(new_password(), known=["x@y.example"]) is None for _ in range(30))
    assert MIN_SCORE == 3


async def test_create_user_refuses_a_weak_password_and_keeps_the_length_rule(
    settings: Settings, engine: AsyncEngine
) -> None:
    email = next_email("weak", "school.example")
    for password, message in (("Password1234", "too easy to guess"),
                              ("Xq7#vLp2!zR", "at least 12 characters")):
        async with standalone_uow(settings, "identity") as uow:
            with pytest.raises(AccountError, match=message):
                await create_user(uow.conn, vault=totp_vault(settings), email=email,
                                  password=password, role="dsl", school_urns=["103456"],
                                  la_codes=[])
    async with engine.connect() as conn:
        assert (await conn.execute(select(users).where(users.c.email == email))).first() is None


async def test_the_cli_refuses_a_weak_password_without_echoing_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli import main

    monkeypatch.setenv("DAYBREAK_IDENTITY_DATABASE_URL", settings.identity_database_url or "")
    monkeypatch.setenv("DAYBREAK_ENV", "development")
    monkeypatch.setattr("sys.stdin", io.StringIO("Password1234\n"))
    code = await asyncio.to_thread(main, ["users", "create", "--email",
                                          next_email("weak", "school.example"), "--role", "dsl",
                                          "--school", "103456"])
    err = capsys.readouterr().err
    assert code == 1 and "too easy to guess" in err and "Password1234" not in err
