"""Password strength: zxcvbn's estimate of how many guesses a password takes, not its length
alone. A password scoring under MIN_SCORE (of 4) is refused with zxcvbn's generic advice,
which never quotes the password."""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

MIN_SCORE = 3  # "safely unguessable": about 10^8 guesses or more
_SCORED_CHARS = 72  # zxcvbn's own bound (its matching is quadratic): the rest only adds
_WORDS = re.compile(r"[^\W\d_]{3,}")


def weakness(password: str, *, known: list[str]) -> str | None:
    """Why the password is too easy to guess (None: strong enough). `known` are words the
    account gives away (its e-mail address, its role), which count as guessed."""
    inputs = [part for text in known
              for part in (text, *text.split("@"), *_WORDS.findall(text))]
    result = zxcvbn(password[:_SCORED_CHARS], user_inputs=inputs)
    if result["score"] >= MIN_SCORE:
        return None
    advice = " ".join(filter(None, [result["feedback"].get("warning") or "",
                                    *result["feedback"].get("suggestions", [])]))
    return (f"password is too easy to guess (strength {result['score']} of 4, at least "
            f"{MIN_SCORE} needed): use a longer passphrase of several uncommon words"
            + (f". {advice}" if advice else ""))
