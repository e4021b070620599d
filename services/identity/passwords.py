"""Secrets at rest: argon2id hashes of passwords and client secrets, digests of login names.

argon2 takes a core for a few hundred milliseconds by design, so it never runs on the event
loop: every hash and check is done in a worker thread (argon2-cffi releases the GIL), and
sign-in checks first wait for one of a few slots (`SignInGate`), refused at once when too
many are already waiting, so a flood of guesses can neither stall a service nor queue
without bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class GateFull(Exception):
    """Too many sign-ins are already waiting for a check: refuse this one now (503)."""


@dataclass(frozen=True)
class Argon2Cost:
    """argon2id's parameters (argon2-cffi's defaults, RFC 9106's second recommendation)."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4


class SecretHasher:
    """argon2id hashes and checks, each in a worker thread."""

    def __init__(self, cost: Argon2Cost = Argon2Cost()) -> None:
        self._hasher = PasswordHasher(time_cost=cost.time_cost, memory_cost=cost.memory_kib,
                                      parallelism=cost.parallelism)
        self._dummy: str | None = None

    async def hash(self, secret: str) -> str:
        """An argon2id hash of a password or client secret."""
        return await asyncio.to_thread(self._hasher.hash, secret)

    async def verify(self, stored_hash: str | None, secret: str) -> bool:
        """Check a secret in constant work whether or not the account exists: an unknown
        account is checked against a dummy hash of the same cost, so timing tells nothing."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_hex(16))
        return await asyncio.to_thread(self._check, stored_hash or self._dummy, secret) and (
            stored_hash is not None)

    def _check(self, stored_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerificationError, InvalidHashError):
            return False


DEFAULT_HASHER = SecretHasher()


async def hash_secret(secret: str) -> str:
    """An argon2id hash (default cost) of a password or client secret, off the event loop."""
    return await DEFAULT_HASHER.hash(secret)


class SignInGate:
    """At most `concurrency` sign-in checks at once, at most `max_waiting` waiting for one."""

    def __init__(self, *, concurrency: int, max_waiting: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._max_waiting = max_waiting
        self._waiting = 0

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold a slot for one sign-in; raises GateFull when the queue is already full."""
        if self._slots.locked() and self._waiting >= self._max_waiting:
            raise GateFull
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()


def subject_hash(subject: str) -> str:
    """A stable digest of a login name, so rate-limit rows never hold the name itself."""
    return hashlib.sha256(subject.strip().lower().encode()).hexdigest()
