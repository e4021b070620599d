"""Ids for test data from one counter: unique within a session by construction.

The counter starts at a point drawn once per session from the process id and the time, so
two sessions sharing a database or broker rarely overlap. Within a session two calls of one
kind differ unless the counter has moved on by that kind's whole space between them (900,000
for URNs, 268 million for LA codes, 16**10 for tags): every call moves it by one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import os
import string
import time

_URN_SPACE = 900_000  # 100000-999999: six digits, as a roster's rows must have
_LA_SPACE = 16**7  # "L" and 7 hex digits: the 1-8 alphanumerics an LA code has


def _session_start() -> int:
    """Where this session's counter starts: the pid and clock, mixed across 40 bits."""
    digest = hashlib.blake2b(f"{os.getpid()}:{time.time_ns()}".encode(), digest_size=5)
    return int.from_bytes(digest.digest(), "big")


_serials = itertools.count(_session_start())


def next_serial() -> int:
    """The next value of the session's counter."""
    return next(_serials)


def next_urn() -> str:
    """A school URN (six digits) no other call this session returns."""
    return str(100_000 + next_serial() % _URN_SPACE)


def next_la() -> str:
    """A local authority code (8 upper-case alphanumerics) unique this session."""
    return f"L{next_serial() % _LA_SPACE:07X}"


def next_tag() -> str:
    """A short lower-case tag for names, references and e-mail addresses."""
    return f"{next_serial() % 16**10:010x}"


def next_email(local: str, domain: str = "school.test") -> str:
    """An e-mail address such as dsl-00a3f9c2b1@school.test, unique this session."""
    return f"{local}-{next_tag()}@{domain}"


def next_force(prefix: str, letters: int = 6) -> str:
    """A force code (upper-case letters only): the prefix and `letters` counted letters."""
    n, out = next_serial(), []
    for _ in range(letters):
        n, digit = divmod(n, 26)
        out.append(string.ascii_uppercase[digit])
    return prefix + "".join(reversed(out))


def next_address() -> str:
    """A client IPv4 address (10.0.0.0/8) no other call this session returns."""
    return str(ipaddress.IPv4Address((10 << 24) + next_serial() % 2**24))
