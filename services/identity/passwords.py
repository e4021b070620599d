"""Secrets at rest: argon2id hashes of passwords and client secrets, digests of login names."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_secret(secret: str) -> str:
    """An argon2id hash of a password or client secret."""
    return _hasher.hash(secret)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """Check a secret in constant work whether or not the account exists."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, secret) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def subject_hash(subject: str) -> str:
    """A stable digest of a login name, so rate-limit rows never hold the name itself."""
    return hashlib.sha256(subject.strip().lower().encode()).hexdigest()
