"""The child's keyed pseudonym: the only way the audit log ever names a child."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from datetime import date

_NOT_LETTERS = re.compile(r"[^a-z]")


def _fold(name: str) -> str:
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_LETTERS.sub("", ascii_only.lower())


def child_key(secret: str, *, given_name: str, family_name: str, date_of_birth: date) -> str:
    """HMAC-SHA256 of the folded names and birth date: stable per child, useless without key."""
    material = f"{_fold(given_name)}|{_fold(family_name)}|{date_of_birth.isoformat()}"
    return hmac.new(secret.encode(), material.encode(), hashlib.sha256).hexdigest()
