"""Envelope encryption of child data: one data key per calendar month (UTC), each wrapped by a
key-encryption key (KEK); both live in files outside the database, so deleting a month's data
key (crypto-shredding) makes every copy of that month's child data unreadable: Kafka segments,
dead letters, outbox rows, backups."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.sealed import SEALED_TOKEN, is_token

if TYPE_CHECKING:
    from services.common.settings import Settings

TOKEN_PREFIX = "dk1"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_WRAP_MAGIC = b"kw1"
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
# the school rolls' key class: one data key per calendar year a roll row was sealed in,
# never shredded (a roll row lives as long as the pupil is on roll); `daybreak reseal` seals
# older rows again under the current year's key (rotation)
ROLL_PREFIX = "roll-"
_ROLL = re.compile(r"roll-\d{4}")
# the key of the roll's keyed hashes (HMAC-SHA256 of a UPN, so SQL can look it up)
_LOOKUP = "roll-lookup"
_TOKEN = SEALED_TOKEN
_WATERMARK = "shredded-through"


class KeyShredded(Exception):
    """The period's data key is gone (past retention): the value can never be opened again."""


class SealError(Exception):
    """Tampered, wrong AAD, wrong KEK or unknown format (the message never holds data)."""


def period_of(at: datetime) -> str:
    """The data-key period of an instant: its calendar month in UTC, 'YYYY-MM'."""
    if at.tzinfo is None:
        raise ValueError("a sealing time must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m")


def roll_period(at: datetime) -> str:
    """The roll key of an instant: 'roll-YYYY', its calendar year in UTC."""
    if at.tzinfo is None:
        raise ValueError("a sealing time must be timezone-aware")
    return f"{ROLL_PREFIX}{at.astimezone(UTC):%Y}"


def is_sealed(value: object) -> bool:
    """Whether `value` is a sealed token (its shape only: opening it is what checks it)."""
    return is_token(value)


def create_kek_file(path: Path) -> bool:
    """Create a KEK file of 32 random bytes, mode 0600, unless one exists; True if created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(_KEY_BYTES))
        out.flush()
        os.fsync(out.fileno())
    return True


def _read_kek(path: Path) -> bytes:
    try:
        kek = path.read_bytes()
    except FileNotFoundError:
        raise SealError(f"no key-encryption key at {path} (run `daybreak keys init`)") from None
    if len(kek) != _KEY_BYTES:
        raise SealError(f"the key-encryption key at {path} is not {_KEY_BYTES} bytes")
    return kek


@dataclass(frozen=True)
class Keyring:
    """Data keys per period, stored wrapped (AES-GCM under the KEK, AAD = the period id) in a
    keystore directory, one file per period; unwrapped keys are cached in memory and the
    cache re-checks that a key's file still exists at most every `recheck_seconds`."""

    keystore_dir: Path
    kek: bytes = field(repr=False)
    recheck_seconds: float = 30.0
    _cache: dict[str, tuple[AESGCM, float]] = field(
        default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _lookup: list[bytes] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The keyring of DAYBREAK_KEYSTORE_DIR and DAYBREAK_KEK_FILE (both required)."""
        from services.common.settings import MissingSetting

        if settings.keystore_dir is None or settings.kek_file is None:
            raise MissingSetting("DAYBREAK_KEYSTORE_DIR and DAYBREAK_KEK_FILE must be set for a "
                                 "service that seals or opens child data")
        return cls.at(settings.keystore_dir, settings.kek_file,
                      recheck_seconds=settings.key_recheck_seconds)

    @classmethod
    def at(cls, keystore_dir: Path, kek_file: Path, *, recheck_seconds: float = 30.0) -> Keyring:
        """The keyring of a keystore directory and a KEK file (the directory is created)."""
        keystore_dir.mkdir(parents=True, exist_ok=True)
        return cls(keystore_dir, _read_kek(kek_file), recheck_seconds)

    def seal(self, value: Any, *, aad: str, at: datetime) -> str:
        """`value` as JSON, encrypted under the data key of `at`'s period and bound to `aad`:
        'dk1.<period>.<base64url(nonce || ciphertext+tag)>' (ASCII, no child data)."""
        return self._seal(period_of(at), value, aad)

    def seal_roll(self, value: Any, *, aad: str, at: datetime) -> str:
        """`seal` under the roll key of `at`'s year ('dk1.roll-YYYY.<...>'): a key that
        crypto-shredding never deletes, for the school rolls."""
        return self._seal(roll_period(at), value, aad)

    def lookup_hash(self, value: str) -> str:
        """HMAC-SHA256 of `value` (hex) under the keystore's lookup key (made on first use,
        wrapped by the KEK like a data key, never in the database): a column SQL can compare
        without holding the value."""
        if not self._lookup:
            with self._lock:
                if not self._lookup:
                    if not self._key_file(_LOOKUP).exists():
                        self._create(_LOOKUP)
                    self._lookup.append(self._unwrap(_LOOKUP,
                                                     self._key_file(_LOOKUP).read_bytes()))
        return hmac.new(self._lookup[0], value.encode(), hashlib.sha256).hexdigest()

    def _seal(self, period: str, value: Any, aad: str) -> str:
        key = self._key(period, create=True)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plain = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        sealed = key.encrypt(nonce, plain, _bound(period, aad))
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{TOKEN_PREFIX}.{period}.{body}"

    def open(self, token: str, *, aad: str) -> Any:
        """The value `seal` sealed with the same `aad`; KeyShredded past retention."""
        match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if match is None or (_PERIOD.fullmatch(match[1]) is None
                             and _ROLL.fullmatch(match[1]) is None):
            raise SealError("not a sealed value (unknown format)")
        period, body = match[1], match[2]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise SealError("not a sealed value (bad encoding)") from None
        if len(raw) < _NONCE_BYTES + 16:
            raise SealError("not a sealed value (too short)")
        key = self._key(period, create=False)
        try:
            plain = key.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _bound(period, aad))
        except InvalidTag:
            raise SealError("sealed value does not open: tampered or sealed for another "
                            "record (AAD)") from None
        return json.loads(plain)

    def shred_through(self, period: str) -> list[str]:
        """Delete the data keys of every period up to and including `period`; never recreated."""
        if _PERIOD.fullmatch(period) is None:
            raise ValueError("a period is 'YYYY-MM'")
        with self._lock:
            self._raise_watermark(period)
            shredded = [p for p in self.periods() if p <= period]
            for gone in shredded:
                self._key_file(gone).unlink(missing_ok=True)
                self._cache.pop(gone, None)
            for cached in [p for p in self._cache if p <= period]:
                self._cache.pop(cached, None)
            _fsync_dir(self.keystore_dir)
        return shredded

    def periods(self) -> list[str]:
        """The periods whose data keys exist, oldest first (months only: the roll's keys are
        never listed, so never shredded)."""
        names = (p.name.removesuffix(".key") for p in self.keystore_dir.glob("*.key"))
        return sorted(n for n in names if _PERIOD.fullmatch(n))

    def shredded_through(self) -> str | None:
        """The latest period shredded so far (its keys and all older ones are gone)."""
        try:
            mark = (self.keystore_dir / _WATERMARK).read_text().strip()
        except FileNotFoundError:
            return None
        return mark if _PERIOD.fullmatch(mark) else None

    def _key(self, period: str, *, create: bool) -> AESGCM:
        now = time.monotonic()
        cached = self._cache.get(period)
        if cached is not None and now - cached[1] < self.recheck_seconds:
            return cached[0]
        path = self._key_file(period)
        if not path.exists():
            self._cache.pop(period, None)
            mark = None if period.startswith(ROLL_PREFIX) else self.shredded_through()
            if mark is not None and period <= mark:
                raise KeyShredded(f"the data key of {period} was shredded (past retention)")
            if not create:
                raise SealError(f"no data key for {period} in the keystore (not shredded: is "
                                "DAYBREAK_KEYSTORE_DIR the shared keystore?)")
            self._create(period)
        key = AESGCM(self._unwrap(period, path.read_bytes()))
        self._cache[period] = (key, now)
        return key

    def _create(self, period: str) -> None:
        """A new wrapped data key for `period`, or the one another process created first: the
        key is written whole to a private file, then hard-linked into place (link fails if the
        name exists, so two creators agree on one key and nobody reads a half-written file)."""
        data_key = secrets.token_bytes(_KEY_BYTES)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        wrapped = _WRAP_MAGIC + nonce + AESGCM(self.kek).encrypt(nonce, data_key,
                                                                  period.encode())
        tmp = self.keystore_dir / f".{period}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(wrapped)
                out.flush()
                os.fsync(out.fileno())
            # another process may have won the race: its key is then the period's key
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self._key_file(period))
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.keystore_dir)

    def _unwrap(self, period: str, wrapped: bytes) -> bytes:
        magic, nonce, body = wrapped[:3], wrapped[3:3 + _NONCE_BYTES], wrapped[3 + _NONCE_BYTES:]
        if magic != _WRAP_MAGIC:
            raise SealError(f"the data key of {period} has an unknown format")
        try:
            return AESGCM(self.kek).decrypt(nonce, body, period.encode())
        except InvalidTag:
            raise SealError(f"the data key of {period} does not unwrap: wrong key-encryption "
                            "key") from None

    def _raise_watermark(self, period: str) -> None:
        current = self.shredded_through()
        if current is not None and current >= period:
            return
        tmp = self.keystore_dir / f".{_WATERMARK}.{secrets.token_hex(8)}.tmp"
        tmp.write_text(period)
        os.replace(tmp, self.keystore_dir / _WATERMARK)

    def _key_file(self, period: str) -> Path:
        return self.keystore_dir / f"{period}.key"


def _bound(period: str, aad: str) -> bytes:
    # the format and period are bound too: a token relabelled to another period fails
    return f"{TOKEN_PREFIX}.{period}.{aad}".encode()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
