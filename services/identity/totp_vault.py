"""TOTP secrets at rest: AES-256-GCM under a key that lives in a file, never in the database.

Sign-in needs the TOTP secret itself (it cannot be hashed), so `identity.users` keeps it
sealed: `totp_secret_enc` is a version byte, a 96-bit nonce and the ciphertext, with the
user's id as associated data (a sealed secret copied onto another user's row does not
open). The key file (`DAYBREAK_IDENTITY_TOTP_KEY_FILE`) holds 32 random bytes in base64;
`daybreak keys totp-init` (and `scripts/infra.sh up`) create it, mode 0600, when missing.

Rows written before the column existed hold the secret in `totp_secret`: the identity
service seals every such row at startup (`seal_legacy_rows`), and sign-in seals the row it
reads if one is still there.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import stat
import uuid
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.settings import MissingSetting, Settings
from services.identity.models import users

log = logging.getLogger(__name__)
KEY_FILE_SETTING = "DAYBREAK_IDENTITY_TOTP_KEY_FILE"
_VERSION = b"\x01"
_NONCE_BYTES = 12
_KEY_BYTES = 32


class TotpKeyError(ValueError):
    """The key file is missing, unreadable or not a 32-byte key (message names no secret)."""


class TotpVault:
    """Seals and opens users' TOTP secrets with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise TotpKeyError("the TOTP key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, user_id: uuid.UUID, secret: str) -> bytes:
        """The secret encrypted for this user's row."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, secret.encode(), _aad(user_id))

    def open(self, user_id: uuid.UUID, sealed: bytes) -> str:
        """The secret; TotpKeyError when it was sealed for another row or under another key."""
        if sealed[:1] != _VERSION or len(sealed) <= 1 + _NONCE_BYTES:
            raise TotpKeyError("not a sealed TOTP secret")
        nonce, body = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, _aad(user_id)).decode()
        except InvalidTag:
            raise TotpKeyError("the TOTP secret does not open with this key for this user"
                               ) from None

    def secret_of(self, row: Any) -> str:
        """The TOTP secret of a `users` row: sealed, or (a legacy row) still in the clear."""
        if row.totp_secret_enc is not None:
            return self.open(row.user_id, row.totp_secret_enc)
        if row.totp_secret is None:
            raise TotpKeyError("the user has no TOTP secret")
        plain: str = row.totp_secret
        return plain

    def secret_or_none(self, row: Any) -> str | None:
        """`secret_of`, or None (logged) when the row's secret does not open: sign-in then
        fails as a wrong code would, never with a 500 that only a right password reaches."""
        try:
            return self.secret_of(row)
        except TotpKeyError:
            log.error("a TOTP secret does not open with this key: is "
                      f"{KEY_FILE_SETTING} the file it was sealed with?")
            return None

    def stored(self, user_id: uuid.UUID, secret: str) -> dict[str, object]:
        """The `users` column values that store this secret (sealed, never in the clear)."""
        return {"totp_secret_enc": self.seal(user_id, secret), "totp_secret": None}


def _aad(user_id: uuid.UUID) -> bytes:
    return b"daybreak-totp:" + str(user_id).encode()


def new_key_text() -> str:
    """A fresh key, as the key file holds it."""
    return base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


def create_key_file(path: Path) -> bool:
    """Write a fresh key to `path`, mode 0600, unless the file exists; True when written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(new_key_text() + "\n")
    return True


def load_key_file(path: Path) -> TotpVault:
    """The vault of the key in `path` (a warning when others may read the file)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise TotpKeyError(f"cannot read the TOTP key file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the TOTP key file is readable by others: chmod 600 it",
                    extra={"path": str(path)})
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TotpKeyError(f"the TOTP key file {path} does not hold a base64 key") from None
    return TotpVault(key)


def key_file_of(settings: Settings) -> Path:
    """The key file the settings name (MissingSetting when none)."""
    if settings.identity_totp_key_file is None:
        raise MissingSetting(f"{KEY_FILE_SETTING} is not set (`daybreak keys totp-init` "
                             "creates the key file it names)")
    return Path(settings.identity_totp_key_file)


def totp_vault(settings: Settings) -> TotpVault:
    """The vault of the key file the settings name."""
    return load_key_file(key_file_of(settings))


async def seal_legacy_rows(engine: AsyncEngine, vault: TotpVault, *, batch: int = 500) -> int:
    """Seal every TOTP secret still held in the clear (rows from before 0020); the count."""
    sealed = 0
    while True:
        async with engine.begin() as conn:
            rows = (await conn.execute(
                select(users.c.user_id, users.c.totp_secret)
                .where(users.c.totp_secret.is_not(None)).limit(batch)
                .with_for_update(skip_locked=True))).all()
            for row in rows:
                await seal_row(conn, vault, row.user_id, row.totp_secret)
        sealed += len(rows)
        if len(rows) < batch:
            break
    if sealed:
        log.info("sealed legacy TOTP secrets", extra={"count": sealed})
    return sealed


async def seal_row(conn: AsyncConnection, vault: TotpVault, user_id: uuid.UUID,
                   secret: str) -> None:
    """Replace a user's clear TOTP secret with the sealed one."""
    await conn.execute(update(users).where(users.c.user_id == user_id)
                       .values(**vault.stored(user_id, secret)))
