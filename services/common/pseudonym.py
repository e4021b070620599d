"""The child's keyed pseudonym: the only way the audit log ever names a child.

A key says its version. Version 2, the only one written, is ``v2:`` and the first 61 hex
digits of an HMAC-SHA256 over the names folded by ``textfold.fold_name`` (every script's
letters, NFKC and case-folded, Latin diacritics dropped) and the birth date: 64 characters,
like a version 1 key, so every column that held one holds the other. Version 1 keys are
bare 64-hex HMACs over the names folded to ASCII letters only; they are no longer written,
but ``lookup_keys`` still gives them so that entries logged under them stay findable.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from datetime import date

from services.common.textfold import fold_name, is_latin_text

CURRENT_VERSION = "v2"
CURRENT_PREFIX = "v2:"  # how every key of the current version starts
_V2_PREFIX = CURRENT_PREFIX
_KEY_LENGTH = 64  # notifier.notification_children.child_key is VARCHAR(64)
_NOT_LETTERS = re.compile(r"[^a-z]")
# what a child key looks like, of either version: how a filter is checked before it is used
KEY_PATTERN = r"^(?:[0-9a-f]{64}|v2:[0-9a-f]{61})$"


def _fold_v1(name: str) -> str:
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_LETTERS.sub("", ascii_only.lower())


def _fold_v2(name: str) -> str:
    return fold_name(name).replace(" ", "")  # fold_name has made hyphens spaces


def _hmac(secret: str, material: str) -> str:
    return hmac.new(secret.encode(), material.encode(), hashlib.sha256).hexdigest()


def child_key(secret: str, *, given_name: str, family_name: str, date_of_birth: date) -> str:
    """The child's current (v2) key: stable per child, useless without the secret."""
    material = (f"{CURRENT_VERSION}|{_fold_v2(given_name)}|{_fold_v2(family_name)}|"
                f"{date_of_birth.isoformat()}")
    return _V2_PREFIX + _hmac(secret, material)[:_KEY_LENGTH - len(_V2_PREFIX)]


def child_key_v1(secret: str, *, given_name: str, family_name: str,
                 date_of_birth: date) -> str:
    """The retired v1 key (ASCII letters only), to find entries logged before v2."""
    material = f"{_fold_v1(given_name)}|{_fold_v1(family_name)}|{date_of_birth.isoformat()}"
    return _hmac(secret, material)


def v1_names_this_child(given_name: str, family_name: str) -> bool:
    """Whether a v1 key of these names can stand for this child alone.

    v1 dropped every letter outside ASCII, so it folded Анна Петрова, Мария Иванова,
    محمد and 王小明 alike to nothing: every such child born on one day shares a single v1
    key, and searching it would return other children's entries. A v1 key is searched
    only when each name keeps letters under v1 and all its letters are Latin (what v1
    dropped was diacritics, or ł, ø, ß and the like, which ``fold_name`` spells in ASCII).
    """
    return all(_fold_v1(name) and is_latin_text(fold_name(name))
               for name in (given_name, family_name))


def lookup_keys(secret: str, *, given_name: str, family_name: str,
                date_of_birth: date) -> dict[str, str]:
    """Every version's key under which this child's entries may be logged, newest first.

    Always v2; v1 as well only when ``v1_names_this_child`` says its v1 key is this
    child's alone.
    """
    keys = {CURRENT_VERSION: child_key(secret, given_name=given_name, family_name=family_name,
                                       date_of_birth=date_of_birth)}
    if v1_names_this_child(given_name, family_name):
        keys["v1"] = child_key_v1(secret, given_name=given_name, family_name=family_name,
                                  date_of_birth=date_of_birth)
    return keys

