"""The child's keyed pseudonym: the only way the audit log ever names a child.

A key says its version. Version 2, the only one written, is ``v2:`` and the first 61 hex
digits of an HMAC-SHA256 over the names folded by ``textfold.fold_name`` (every script's
letters, NFKC and case-folded, Latin diacritics dropped) and the birth date: 64 characters,
like a version 1 key, so every column that held one holds the other. Version 1 keys are
bare 64-hex HMACs over the names folded to ASCII letters only; they are no longer written,
but ``lookup_keys`` still gives them so that entries logged under them stay findable.

The secret is rotatable (``ChildKeySecrets``). DAYBREAK_CHILD_KEY_SECRET, the original one,
makes v1 and v2 keys; each secret rotated in since (DAYBREAK_CHILD_KEY_SECRETS, a JSON object
of id to secret, the current one first: ``daybreak pseudonym rotate``) makes version 3 keys,
``v3:<id>:`` and the first hex digits of its HMAC, 64 characters in all. Keys are written
under the current secret only; ``lookup_keys`` gives the child's key under every secret
still configured, so entries logged before a rotation stay findable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets as random
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from services.common.textfold import fold_name, is_latin_text

# the version the original secret writes (after a rotation: ChildKeySecrets.current_version)
CURRENT_VERSION = "v2"
CURRENT_PREFIX = "v2:"  # how every key of that version starts
_V2_PREFIX = CURRENT_PREFIX
_KEY_LENGTH = 64  # notifier.notification_children.child_key is VARCHAR(64)
_NOT_LETTERS = re.compile(r"[^a-z]")
_V3 = "v3"
_MAX_ID = 8
SECRET_ID_PATTERN = re.compile(rf"[a-z0-9]{{1,{_MAX_ID}}}")
# what a child key looks like, of any version: how a filter is checked before it is used
# (no look-ahead, which the API's regex engine lacks: one v3 branch per id length)
KEY_PATTERN = "^(?:[0-9a-f]{64}|v2:[0-9a-f]{61}|" + "|".join(
    f"v3:[a-z0-9]{{{n}}}:[0-9a-f]{{{_KEY_LENGTH - 4 - n}}}" for n in range(1, _MAX_ID + 1)
) + ")$"


class BadChildKeySecrets(ValueError):
    """DAYBREAK_CHILD_KEY_SECRETS is not a JSON object of ids to secrets (names no secret)."""


@dataclass(frozen=True, repr=False)
class ChildKeySecrets:
    """Every secret child keys have been made with: ``original`` (v1 and v2 keys) and the
    secrets rotated in since, by id (v3 keys), the current one first. With none rotated in,
    the original is current and keys are v2, as before rotation existed."""

    original: str
    rotated: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for secret_id in self.rotated:
            if not SECRET_ID_PATTERN.fullmatch(secret_id):
                raise BadChildKeySecrets(
                    f"a child key secret id is 1 to {_MAX_ID} lower-case letters or digits")

    @classmethod
    def from_setting(cls, original: str, rotated: str | None) -> ChildKeySecrets:
        """From DAYBREAK_CHILD_KEY_SECRET and DAYBREAK_CHILD_KEY_SECRETS (JSON, or unset)."""
        if not rotated:
            return cls(original)
        try:
            parsed = json.loads(rotated)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not all(
                isinstance(v, str) and v for v in parsed.values()):
            raise BadChildKeySecrets("DAYBREAK_CHILD_KEY_SECRETS must be a JSON object of "
                                     "secret ids to secrets, the current one first")
        return cls(original, parsed)

    @property
    def current_version(self) -> str:
        """The label of the keys now written: 'v2', or 'v3:<id>' after a rotation."""
        return f"{_V3}:{next(iter(self.rotated))}" if self.rotated else CURRENT_VERSION

    @property
    def current_prefix(self) -> str:
        """How every key written now starts."""
        return self.current_version + ":"

    def all_secrets(self) -> list[str]:
        """The original and every rotated-in secret (to check their strength)."""
        return [self.original, *self.rotated.values()]

    def rotate(self) -> ChildKeySecrets:
        """These secrets with a new random current one in front (every old one kept)."""
        used = {int(i[1:]) for i in self.rotated if re.fullmatch(r"k[0-9]+", i)}
        secret_id = f"k{max(used, default=0) + 1}"
        return ChildKeySecrets(self.original, {secret_id: random.token_hex(32), **self.rotated})

    def rotated_setting(self) -> str:
        """The DAYBREAK_CHILD_KEY_SECRETS value of these secrets."""
        return json.dumps(dict(self.rotated))


Secrets = str | ChildKeySecrets  # a bare secret is the original one alone


def _fold_v1(name: str) -> str:
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_LETTERS.sub("", ascii_only.lower())


def _fold_v2(name: str) -> str:
    return fold_name(name).replace(" ", "")  # fold_name has made hyphens spaces


def _hmac(secret: str, material: str) -> str:
    return hmac.new(secret.encode(), material.encode(), hashlib.sha256).hexdigest()


def _as_secrets(secrets: Secrets) -> ChildKeySecrets:
    return ChildKeySecrets(secrets) if isinstance(secrets, str) else secrets


def child_key(secrets: Secrets, *, given_name: str, family_name: str,
              date_of_birth: date) -> str:
    """The child's current key: stable per child (and secret), useless without the secret."""
    keyring = _as_secrets(secrets)
    if not keyring.rotated:
        return _child_key_v2(keyring.original, given_name=given_name, family_name=family_name,
                             date_of_birth=date_of_birth)
    secret_id, secret = next(iter(keyring.rotated.items()))
    return child_key_v3(secret, secret_id, given_name=given_name, family_name=family_name,
                        date_of_birth=date_of_birth)


def current_prefix(secrets: Secrets) -> str:
    """How every key written now starts ('v2:', or 'v3:<id>:' after a rotation)."""
    return _as_secrets(secrets).current_prefix


def _child_key_v2(secret: str, *, given_name: str, family_name: str,
                  date_of_birth: date) -> str:
    material = (f"{CURRENT_VERSION}|{_fold_v2(given_name)}|{_fold_v2(family_name)}|"
                f"{date_of_birth.isoformat()}")
    return _V2_PREFIX + _hmac(secret, material)[:_KEY_LENGTH - len(_V2_PREFIX)]


def child_key_v3(secret: str, secret_id: str, *, given_name: str, family_name: str,
                 date_of_birth: date) -> str:
    """The v3 key under one rotated-in secret: v2's folding, the secret's id in the key."""
    prefix = f"{_V3}:{secret_id}:"
    material = (f"{_V3}|{secret_id}|{_fold_v2(given_name)}|{_fold_v2(family_name)}|"
                f"{date_of_birth.isoformat()}")
    return prefix + _hmac(secret, material)[:_KEY_LENGTH - len(prefix)]


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


def lookup_keys(secrets: Secrets, *, given_name: str, family_name: str,
                date_of_birth: date) -> dict[str, str]:
    """Every key under which this child's entries may be logged, by version, newest first
    (the current one first).

    A v3 key under each rotated-in secret ('v3:<id>'), then always v2 (the original
    secret); v1 as well only when ``v1_names_this_child`` says its v1 key is this child's
    alone.
    """
    keyring = _as_secrets(secrets)
    keys = {f"{_V3}:{secret_id}": child_key_v3(
        secret, secret_id, given_name=given_name, family_name=family_name,
        date_of_birth=date_of_birth) for secret_id, secret in keyring.rotated.items()}
    keys[CURRENT_VERSION] = _child_key_v2(keyring.original, given_name=given_name,
                                          family_name=family_name, date_of_birth=date_of_birth)
    if v1_names_this_child(given_name, family_name):
        keys["v1"] = child_key_v1(keyring.original, given_name=given_name,
                                  family_name=family_name, date_of_birth=date_of_birth)
    return keys

