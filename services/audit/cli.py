"""`daybreak audit verify | keygen | acknowledge-break | witness | witness-keygen` and
`daybreak retention run`: functions the CLI wires in."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from services.audit.breaks import ACK_ACTION, ack_purpose, check_reason
from services.audit.cosign import Cosigner
from services.audit.heads import AUDIT_HEADS, HeadSigner, KafkaHeads
from services.audit.log import TreeCache, access_draft, append_entry
from services.audit.models import audit_events
from services.audit.queries import verify_report
from services.audit.settings import AuditSettings, audit_settings
from services.audit.tree_head import generate_keypair, key_id, load_public_key
from services.audit.witness import WitnessSettings, run_witness
from services.common.context import utc_now
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
            return await verify_report(engine, config)
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


class BreakNotOpen(ValueError):
    """The seq given is not the break that verification stops at."""


async def record_acknowledgement(
    config: AuditSettings, *, seq: int, reason: str, actor: str, now: datetime
) -> dict[str, Any]:
    """Acknowledge the break verification stops at (it must be at `seq`), then sign a head
    over the log as it stands (published to `audit-heads.v1` too)."""
    reason = check_reason(reason)
    engine = service_engine(config, "audit", pool_size=2)
    publish = KafkaHeads(config.kafka(), config.topic(AUDIT_HEADS),
                         layout=config.topic_layout())
    try:
        report = await verify_report(engine, config)
        open_break = report["breaks"][-1] if report["signing_blocked"] else None
        if open_break is None or open_break["seq"] != seq:
            where = "none" if open_break is None else f"seq {open_break['seq']}"
            raise BreakNotOpen(f"no unacknowledged break at seq {seq} (verification stops at "
                               f"{where})")
        async with UnitOfWork(engine) as uow:
            stored = (await uow.conn.execute(select(audit_events.c.hash).where(
                audit_events.c.seq == seq))).scalar_one()
            entry = await append_entry(uow.conn, access_draft(
                actor=actor, actor_role="system", action=ACK_ACTION, channel="cli",
                purpose=ack_purpose(seq, stored, reason), at=now))
            await uow.commit()
        assert entry is not None
        signer = HeadSigner(engine=engine, tree=TreeCache(), private_key=config.private_key(),
                            heads_file=config.audit_heads_file, clock=lambda: now, every=1,
                            interval_s=60, publish=publish)
        head = await signer.sign_now()
        await signer.drain()
    finally:
        await publish.stop()
        await engine.dispose()
    return {"acknowledged_seq": seq, "entry_id": str(entry.id), "entry_seq": entry.seq,
            "signed_tree_size": None if head is None else head.tree_size}


def acknowledge_break(settings: Settings, *, seq: int, reason: str, actor: str) -> int:
    """Print the acknowledgement recorded; 1 (saying why) when there is no such open break."""
    try:
        done = asyncio.run(record_acknowledgement(audit_settings(settings), seq=seq,
                                                  reason=reason, actor=actor, now=utc_now()))
    except ValueError as exc:  # no such open break, or a reason refused
        print(f"daybreak: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(done))
    return 0


def witness(settings: Settings) -> int:
    """Run the witness until SIGINT or SIGTERM."""
    config = WitnessSettings(**settings.model_dump())

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_witness(config, stop=stop)

    asyncio.run(work())
    return 0


def witness_keygen(name: str) -> int:
    """Print a new witness signing key and the verifier key that goes in
    DAYBREAK_AUDIT_WITNESS_KEYS."""
    pair = generate_keypair()
    cosigner = Cosigner(name, load_public_key(pair.public_key))
    print(json.dumps({"private_key": pair.private_key, "name": name,
                      "vkey": cosigner.vkey()}))
    return 0
