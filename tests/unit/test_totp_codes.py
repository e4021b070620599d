"""A TOTP code is six ASCII digits, compared as bytes: a non-ASCII code is wrong, never a 500
that tells a guesser the password was right (services/identity/accounts.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest

from services.identity.accounts import _totp_step

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECRET = pyotp.random_base32()


@pytest.mark.parametrize("code", ["é", "12345é", "\u0661\u0662\u0663\u0664\u0665\u0666",
                                  "\uff11\uff12\uff13\uff14\uff15\uff16", "", "1234567", "12 34"])
def test_a_code_that_is_not_six_ascii_digits_is_simply_wrong(code: str) -> None:
    assert _totp_step(SECRET, code, NOW) is None


def test_the_current_code_gives_its_step_even_with_spaces_around_it() -> None:
    totp = pyotp.TOTP(SECRET)
    assert _totp_step(SECRET, f" {totp.at(NOW)} ", NOW) == totp.timecode(NOW)
    wrong = f"{(int(totp.at(NOW)) + 1) % 1_000_000:06d}"
    assert _totp_step(SECRET, wrong, NOW) in (None, totp.timecode(NOW) - 1,
                                               totp.timecode(NOW) + 1)
