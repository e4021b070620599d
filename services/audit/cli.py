"""`daybreak audit verify | keygen | retention run`: functions the CLI wires in."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.audit.log import access_draft, append_entry
from services.audit.models import audit_events
from services.audit.queries import verify_stored_log
from services.audit.settings import AuditSettings, audit_settings
from services.audit.tree_head import generate_keypair, key_id, load_public_key
from services.common.context import utc_now
from services.common.db import UnitOfWork, service_engine
from services.common.retention import content_cutoff, purge_notifications, purge_reviews
from services.common.settings import Settings

RETENTION_NOTE = (
    "audit entries are never purged: the log is append-only and hash-chained from its first "
    "entry, so removing old entries would break verification; this run records that it ran"
)
RETENTION_ACTOR = "system:retention"


def verify(settings: Settings) -> int:
    """Print the verification report; 0 when the log verifies, 1 (naming first_bad) when not."""
    config = audit_settings(settings)

    async def work() -> dict[str, Any]:
        engine = service_engine(config, "audit", pool_size=2)
        try:
            return await verify_stored_log(engine, public_key=config.public_key(),
                                           heads_file=config.audit_heads_file)
        finally:
            await engine.dispose()

    report = asyncio.run(work())
    print(json.dumps(report, indent=2))
    if report["ok"]:
        return 0
    print(f"daybreak: audit log does not verify: first_bad={report['first_bad']} "
          f"({report['reason']})", file=sys.stderr)
    return 1


def keygen() -> int:
    """Print a new tree-head signing keypair (set DAYBREAK_AUDIT_SIGNING_KEY to the private)."""
    pair = generate_keypair()
    print(json.dumps({
        "private_key": pair.private_key, "public_key": pair.public_key,
        "key_id": key_id(load_public_key(pair.public_key)),
    }))
    return 0


def retention_cutoff(now: datetime, years: int) -> datetime:
    """The instant `years` calendar years before `now` (29 February falls back a day)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return (now - timedelta(days=1)).replace(year=now.year - years)


async def purge_content(
    engine: AsyncEngine, config: AuditSettings, *, now: datetime, channel: str
) -> dict[str, Any]:
    """Erase notification and review content past its period, one transaction per group.

    Each group's erasure and the `retention.purge` entry recording it commit together, so
    content is never erased without a record, nor recorded as erased when it was not.
    """
    days = config.retention_content_days
    cutoff = content_cutoff(now, days)
    counts: dict[str, int] = {}
    for name, purge in (("notifications", purge_notifications), ("reviews", purge_reviews)):
        async with UnitOfWork(engine) as uow:
            counts[name] = await purge(uow.conn, cutoff=cutoff, now=now)
            if counts[name]:
                await append_entry(uow.conn, access_draft(
                    actor=RETENTION_ACTOR, actor_role="system", action="retention.purge",
                    channel=channel, at=now,
                    purpose=(f"retention {days}d: {counts[name]} {name} erased, "
                             f"cutoff {cutoff.isoformat()}")))
            await uow.commit()
    return {"notifications_purged": counts["notifications"],
            "reviews_purged": counts["reviews"], "cutoff": cutoff.isoformat()}


async def run_retention(config: AuditSettings, *, now: datetime) -> dict[str, Any]:
    """Purge expired content, count the audit entries past their period, record the run."""
    cutoff = retention_cutoff(now, config.audit_retention_years)
    engine = service_engine(config, "audit", pool_size=1)
    try:
        summary = await purge_content(engine, config, now=now, channel="cli")
        # the audit log itself is never purged (RETENTION_NOTE): verification starts from
        # the first entry, so the run is only counted and recorded
        async with UnitOfWork(engine) as uow:
            eligible = (await uow.conn.execute(select(func.count()).where(
                audit_events.c.at < cutoff))).scalar_one()
            purpose = (f"retention {config.audit_retention_years}y: cutoff {cutoff.isoformat()}, "
                       f"{eligible} eligible, 0 purged")
            entry = await append_entry(uow.conn, access_draft(
                actor="daybreak-cli", actor_role="system", action="retention.run",
                channel="cli", purpose=purpose, at=now))
            await uow.commit()
    finally:
        await engine.dispose()
    assert entry is not None
    return summary | {"audit": {"cutoff": cutoff.isoformat(), "eligible": eligible, "purged": 0,
                                "entry_id": str(entry.id), "note": RETENTION_NOTE}}


def retention_run(settings: Settings) -> int:
    """Apply the retention periods (content purged, audit log kept); prints a one-line summary."""
    print(json.dumps(asyncio.run(run_retention(audit_settings(settings), now=utc_now()))))
    return 0
