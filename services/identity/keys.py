"""The issuer's signing keys: the active Ed25519 key and the older ones still published.

`DAYBREAK_IDENTITY_SIGNING_KEYS` is a JSON list of private keys, each the base64 of a 32-byte
Ed25519 seed or a PKCS#8 PEM. The first signs; every one listed is published in the JWKS, so
a token signed by a previous key verifies until that key is taken off the list (retired).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from services.common.jwks import jwks_document, key_id


class BadSigningKey(ValueError):
    """A configured signing key that cannot be read (message names no key material)."""


def generate_key() -> str:
    """A new private key as the base64 of its 32-byte seed."""
    seed = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(seed).decode()


def load_key(text: str) -> Ed25519PrivateKey:
    """One private key from a base64 seed or a PEM."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise BadSigningKey("a signing key must be Ed25519")
            return key
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error):
        raise BadSigningKey("a signing key is neither a base64 Ed25519 seed nor a PEM") from None


def parse_keys(raw: str) -> list[str]:
    """The list of key texts a setting holds (a JSON list, or one key on its own)."""
    stripped = raw.strip()
    if not stripped.startswith("["):
        return [stripped] if stripped else []
    try:
        found = json.loads(stripped)
    except ValueError:
        raise BadSigningKey("DAYBREAK_IDENTITY_SIGNING_KEYS is not a JSON list") from None
    if not isinstance(found, list) or not all(isinstance(k, str) for k in found):
        raise BadSigningKey("DAYBREAK_IDENTITY_SIGNING_KEYS must be a JSON list of strings")
    return found


@dataclass(frozen=True)
class Keyset:
    """The active signing key first, then the previous keys whose public halves stay out."""

    keys: tuple[Ed25519PrivateKey, ...]

    @classmethod
    def from_setting(cls, raw: str) -> Keyset:
        """Read the setting; refuses an empty list and duplicates."""
        keys = tuple(load_key(k) for k in parse_keys(raw))
        if not keys:
            raise BadSigningKey("DAYBREAK_IDENTITY_SIGNING_KEYS names no key")
        kids = [key_id(k.public_key()) for k in keys]
        if len(set(kids)) != len(kids):
            raise BadSigningKey("DAYBREAK_IDENTITY_SIGNING_KEYS lists a key twice")
        return cls(keys)

    @property
    def active(self) -> Ed25519PrivateKey:
        """The key new tokens are signed with."""
        return self.keys[0]

    @property
    def active_kid(self) -> str:
        """The active key's `kid`."""
        return key_id(self.active.public_key())

    @property
    def kids(self) -> list[str]:
        """Every listed key's `kid`, active first."""
        return [key_id(k.public_key()) for k in self.keys]

    def jwks(self) -> dict[str, Any]:
        """Every listed key's public half, active first."""
        return jwks_document([k.public_key() for k in self.keys])


def rotated(raw: str, *, keep: int = 2) -> str:
    """The setting with a new active key in front and at most `keep` keys in all."""
    keys = [generate_key(), *parse_keys(raw)]
    return json.dumps(keys[:keep])
