"""Failed sign-ins, counted three ways over one window, so that guessing is slow everywhere
but nobody can lock another person out.

* per login and address (`per_pair`, 5): a stranger's guesses lock only the stranger's own
  address out of that login; the DSL at school still signs in;
* per address (`per_address`, 20): one address cannot spray guesses over many logins;
* per login (`per_login`, 100): a ceiling only a guesser with many addresses reaches.

IPv6 addresses are counted by their /64, the block one subscriber is given. A login's checks
are serialised by an advisory lock, so the per-login and per-pair counts are exact under a
burst; the per-address count may be passed by the few checks that run at once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.identity.models import auth_failures
from services.identity.security_events import Attempt

IPV6_BLOCK = 64


@dataclass(frozen=True)
class Budgets:
    """How many failed sign-ins a window allows, per (login, address), address and login."""

    per_pair: int = 5
    per_address: int = 20
    per_login: int = 100
    window: timedelta = timedelta(minutes=15)


def address_key(address: str) -> str:
    """What failures are counted against: the address, or an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/{IPV6_BLOCK}", strict=False))
    return str(ip)


async def is_throttled(
    conn: AsyncConnection, subject: str, attempt: Attempt, budgets: Budgets
) -> bool:
    """Whether any budget is spent; holds the login's lock until the caller commits, so
    parallel guesses at one login each see those before them."""
    await conn.execute(select(func.pg_advisory_xact_lock(int(subject[:15], 16))))
    f, address = auth_failures.c, address_key(attempt.client_address)
    pair, by_address, by_login = (await conn.execute(
        select(func.count().filter(f.subject_hash == subject, f.client_address == address),
               func.count().filter(f.client_address == address),
               func.count().filter(f.subject_hash == subject))
        .where(f.failed_at > attempt.at - budgets.window,
               or_(f.subject_hash == subject, f.client_address == address))
    )).one()
    return (pair >= budgets.per_pair or by_address >= budgets.per_address
            or by_login >= budgets.per_login)


async def count_failure(conn: AsyncConnection, subject: str, attempt: Attempt) -> None:
    """Count a failed sign-in against the login and the address."""
    await conn.execute(insert(auth_failures).values(
        subject_hash=subject, failed_at=attempt.at,
        client_address=address_key(attempt.client_address)))


async def forget_failures(conn: AsyncConnection, subject: str, attempt: Attempt) -> None:
    """After a sign-in succeeds: forget the person's own slips from this address (the
    failures from elsewhere still count towards the address and login budgets)."""
    await conn.execute(delete(auth_failures).where(
        auth_failures.c.subject_hash == subject,
        auth_failures.c.client_address == address_key(attempt.client_address)))
