"""Corrections: police send an incident's whole corrected body, or withdraw one child.

Each is on Kafka (acks=all) before the transaction that records it commits, as a report is.
Children are told apart by their position in the report: a correction's changed children are
those whose body differs from the previous version (or are new), and those it drops from the
end are withdrawn. A child withdrawn alone stays withdrawn whatever later versions say.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import topics
from schemas.envelope import EventPayload, wrap
from schemas.incidents import (
    ChildWithdrawn,
    IncidentCorrected,
    IncidentIn,
    WithdrawIn,
    incident_age_check,
)
from services.common.db import UnitOfWork
from services.common.problems import Problem
from services.common.security import Principal
from services.ingest.models import child_withdrawals, forces, incident_versions, incidents
from services.ingest.receipts import note_incident_change
from services.ingest.service import (
    Publisher,
    body_digest,
    child_digests,
    disclosure_fields,
    store_version,
)


@dataclass(frozen=True)
class Corrected:
    """What a correction did: a new version (202) or the current one again (200)."""

    created: bool
    incident_id: uuid.UUID
    version: int


def changed_children(previous: Sequence[str] | None, current: Sequence[str],
                     withdrawn: set[int]) -> tuple[list[int], list[int]]:
    """The positions a correction changed (or added), and those it dropped from the end; a
    version kept without per-child digests counts every child as changed."""
    changed = [i for i, digest in enumerate(current) if i not in withdrawn
               and (previous is None or i >= len(previous) or previous[i] != digest)]
    dropped = [i for i in range(len(current), len(previous or ())) if i not in withdrawn]
    return changed, dropped


async def correct_incident(
    incident_id: uuid.UUID, body: IncidentIn, *, principal: Principal, uow: UnitOfWork,
    publisher: Publisher, topic_prefix: str, now: datetime,
) -> Corrected:
    """Keep the corrected body as the next version and announce which children it changed."""
    digest = body_digest(body)
    async with uow:
        row = await _own_incident(uow.conn, incident_id, principal)
        if body.force_code != principal.force_code:
            raise Problem(403, "Forbidden", "You may only report incidents of your own force.")
        if body.incident_reference != row.incident_reference:
            raise Problem(409, "Conflict", "A correction keeps the incident_reference it "
                          "corrects. Report a new incident with a new reference.")
        if row.status == "withdrawn":
            raise Problem(409, "Conflict", "This incident was withdrawn; it cannot be corrected.")
        if not incident_age_check(body.occurred_at, now):
            raise Problem(422, "Invalid request body", "occurred_at is in the future.",
                          extra={"errors": [{"field": "occurred_at",
                                             "message": "is in the future"}]})
        latest = (await uow.conn.execute(
            select(incident_versions.c.body_sha256, incident_versions.c.child_digests)
            .where(incident_versions.c.incident_id == incident_id,
                   incident_versions.c.version == row.version))).first()
        if latest is not None and latest.body_sha256 == digest:
            return Corrected(False, incident_id, row.version)
        withdrawn = await _withdrawn(uow.conn, incident_id)
        changed, dropped = changed_children(latest.child_digests if latest else None,
                                            child_digests(incident_id, body), withdrawn)
        version = row.version + 1
        await store_version(uow.conn, incident_id, version, body=body, digest=digest, now=now)
        await uow.conn.execute(update(incidents).where(incidents.c.incident_id == incident_id)
                               .values(version=version, children_count=len(body.children)))
        for index in dropped:
            await _withdraw(uow.conn, incident_id, index, now)
        force = (await uow.conn.execute(
            select(forces.c.disclosure_profile, forces.c.default_la_code)
            .where(forces.c.force_code == row.force_code))).one()
        event = IncidentCorrected(
            incident_id=incident_id, version=version, received_at=now, incident=body,
            changed_children=changed, withdrawn_children=dropped,
            disclosure_fields=disclosure_fields(force.disclosure_profile),
            default_la_code=force.default_la_code)
        await note_incident_change(uow.conn, incident_id, change="IncidentCorrected", now=now)
        await _publish(publisher, topic_prefix, event, incident_id, f"corrected:{version}", now)
        await uow.commit()
    return Corrected(True, incident_id, version)


async def withdraw_child(
    incident_id: uuid.UUID, child_index: int, body: WithdrawIn, *, principal: Principal,
    uow: UnitOfWork, publisher: Publisher, topic_prefix: str, now: datetime,
) -> bool:
    """Withdraw one child of an incident; True when it was withdrawn now (False: before)."""
    async with uow:
        row = await _own_incident(uow.conn, incident_id, principal)
        if child_index >= row.children_count and child_index not in await _withdrawn(
                uow.conn, incident_id):
            raise Problem(404, "Not found", "No child at that position in this incident.")
        if row.status == "withdrawn":
            raise Problem(409, "Conflict", "This incident was withdrawn as a whole.")
        if not await _withdraw(uow.conn, incident_id, child_index, now):
            return False
        event = ChildWithdrawn(incident_id=incident_id, force_code=row.force_code,
                               child_index=child_index, withdrawn_at=now, reason=body.reason)
        await note_incident_change(uow.conn, incident_id, change="ChildWithdrawn", now=now)
        await _publish(publisher, topic_prefix, event, incident_id,
                       f"child-withdrawn:{child_index}", now)
        await uow.commit()
    return True


async def _own_incident(conn: AsyncConnection, incident_id: uuid.UUID,
                        principal: Principal) -> Any:
    row = (await conn.execute(select(incidents).where(incidents.c.incident_id == incident_id)
                              .with_for_update())).first()
    if row is None or row.force_code != principal.force_code:
        raise Problem(404, "Not found", "No such incident for your force.")
    return row


async def _withdrawn(conn: AsyncConnection, incident_id: uuid.UUID) -> set[int]:
    found = await conn.execute(select(child_withdrawals.c.child_index).where(
        child_withdrawals.c.incident_id == incident_id))
    return set(found.scalars())


async def _withdraw(conn: AsyncConnection, incident_id: uuid.UUID, index: int,
                    now: datetime) -> bool:
    added = await conn.execute(insert(child_withdrawals).values(
        incident_id=incident_id, child_index=index, withdrawn_at=now,
    ).on_conflict_do_nothing().returning(child_withdrawals.c.child_index))
    return added.first() is not None


async def _publish(publisher: Publisher, topic_prefix: str, event: EventPayload,
                   incident_id: uuid.UUID, name: str, now: datetime) -> None:
    # inside the open transaction: if the broker refuses, nothing is committed
    envelope = wrap(event, event_id=uuid.uuid5(incident_id, name), occurred_at=now,
                    correlation_id=incident_id)
    await publisher.publish(f"{topic_prefix}{topics.INCIDENTS}", key=str(incident_id),
                            value=envelope.to_bytes())
