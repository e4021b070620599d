"""`daybreak audit verify | keygen | retention run`: functions the CLI wires in."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from services.audit.log import access_draft, append_entry
from services.audit.models import audit_events
from services.audit.queries import verify_stored_log
from services.audit.settings import AuditSettings, audit_settings
from services.audit.tree_head import generate_keypair, key_id, load_public_key
from services.common.db import UnitOfWork, service_engine
from services.common.settings import Settings

RETENTION_NOTE = (
    "audit entries are never purged: the log is append-only and hash-chained from its first "
    "entry, so removing old entries would break verification; this run records that it ran"
)


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


async def record_retention_run(config: AuditSettings, *, now: datetime) -> dict[str, Any]:
    """Count the audit entries past their period and record the run (none is purged)."""
    cutoff = retention_cutoff(now, config.audit_retention_years)
    engine = service_engine(config, "audit", pool_size=1)
    try:
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
    return {"cutoff": cutoff.isoformat(), "eligible": eligible, "purged": 0,
            "entry_id": str(entry.id), "note": RETENTION_NOTE}


