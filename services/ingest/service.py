"""Ingest use cases: accept, withdraw and look up incidents; maintain forces."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import topics
from schemas.envelope import wrap
from schemas.incidents import (
    DISCLOSABLE_FIELDS,
    IncidentIn,
    IncidentWithdrawn,
    WithdrawIn,
    incident_age_check,
)
from services.common.db import UnitOfWork
from services.common.problems import Problem
from services.common.security import Principal
from services.ingest.models import forces, incident_versions, incidents
from services.ingest.receipts import note_incident_change
from services.ingest.receipts_view import receipts_of

if TYPE_CHECKING:
    from services.ingest.batcher import IngestBatcher

INCIDENT_NAMESPACE = uuid.UUID("6f1b8a8e-4c1e-4a77-9d5e-0c2f6d0b7a11")
DEFAULT_DISCLOSURE = ("occurred_at", "incident_type", "present_at_incident")


class Publisher(Protocol):
    """Sends one message and returns once the broker has it durably."""

    async def publish(self, topic: str, *, key: str, value: bytes) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """What happened to a request: created (202) or already there (200)."""

    created: bool
    incident_id: uuid.UUID
    status: str


def incident_id_for(force_code: str, reference: str) -> uuid.UUID:
    """A stable id per (force, reference), so a retried publish carries the same ids."""
    return uuid.uuid5(INCIDENT_NAMESPACE, f"{force_code}:{reference}")


def body_digest(body: IncidentIn) -> str:
    """A digest of the validated body, to tell an idempotent retry from a conflicting one."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def child_digests(incident_id: uuid.UUID, body: IncidentIn) -> list[str]:
    """One digest per child, salted with the incident's id, to tell which children a
    correction changed without keeping their details."""
    return [hashlib.sha256(f"{incident_id}:{child.model_dump_json()}".encode()).hexdigest()
            for child in body.children]


async def store_version(conn: AsyncConnection, incident_id: uuid.UUID, version: int, *,
                        body: IncidentIn, digest: str, now: datetime) -> None:
    """Keep one version of an incident: its digests, never its words."""
    await conn.execute(insert(incident_versions).values(
        incident_id=incident_id, version=version, body_sha256=digest,
        child_digests=child_digests(incident_id, body), received_at=now))


async def accept_incident(
    body: IncidentIn, *, principal: Principal, batcher: IngestBatcher, now: datetime,
) -> Outcome:
    """Record the incident and put it on Kafka (acks=all) before the transaction commits, in
    a batch with the other reports waiting now (services/ingest/batcher.py).

    A force with no profile naming its default LA is refused (409) and nothing is kept: the
    police still hold the incident and phone it through, so no child waits on an LA nobody
    knows (`la:unknown` cannot exist).
    """
    if body.force_code != principal.force_code:
        raise Problem(403, "Forbidden", "You may only report incidents of your own force.")
    if not incident_age_check(body.occurred_at, now):
        raise Problem(422, "Invalid request body", "occurred_at is in the future.",
                      extra={"errors": [{"field": "occurred_at", "message": "is in the future"}]})
    return await batcher.accept(
        body, incident_id=incident_id_for(body.force_code, body.incident_reference),
        digest=body_digest(body), now=now)


def force_not_ready(force_code: str) -> Problem:
    """409: the force has no profile naming its default LA, so a child might reach nobody."""
    return Problem(
        409, "Force not ready",
        f"Force {force_code} has no Daybreak profile naming its default local authority, so "
        "a child whose local authority cannot be told from the report would reach nobody. "
        "Nothing was stored. Keep this incident and pass it on by telephone as before, and "
        "contact the Daybreak administrator to complete the force's profile.")


def reference_conflict() -> Problem:
    """409: the force's reference was already used with another body."""
    return Problem(409, "Conflict", "This incident_reference was already used with a "
                   "different body. Use a new reference for a new incident.")


def disclosure_fields(profile: dict[str, Any] | None) -> list[str]:
    """What a force lets schools see: its profile's known fields, else the minimal default."""
    if not profile:
        return list(DEFAULT_DISCLOSURE)
    return [f for f in profile.get("fields", DEFAULT_DISCLOSURE) if f in DISCLOSABLE_FIELDS]


async def withdraw_incident(
    incident_id: uuid.UUID, body: WithdrawIn, *, principal: Principal, uow: UnitOfWork,
    publisher: Publisher, topic_prefix: str, now: datetime,
) -> Outcome:
    """Mark an incident withdrawn and announce it; a repeated withdrawal changes nothing."""
    async with uow:
        row = (
            await uow.conn.execute(
                select(incidents.c.status, incidents.c.force_code)
                .where(incidents.c.incident_id == incident_id)
                .with_for_update()
            )
        ).first()
        if row is None or row.force_code != principal.force_code:
            raise Problem(404, "Not found", "No such incident for your force.")
        if row.status == "withdrawn":
            return Outcome(False, incident_id, "withdrawn")
        await uow.conn.execute(
            update(incidents).where(incidents.c.incident_id == incident_id)
            .values(status="withdrawn", withdrawn_at=now)
        )
        await note_incident_change(uow.conn, incident_id, change="IncidentWithdrawn", now=now)
        event = IncidentWithdrawn(incident_id=incident_id, force_code=row.force_code,
                                  withdrawn_at=now, reason=body.reason)
        envelope = wrap(event, event_id=uuid.uuid5(incident_id, "withdrawn"), occurred_at=now,
                        correlation_id=incident_id)
        await publisher.publish(
            f"{topic_prefix}{topics.INCIDENTS}", key=str(incident_id), value=envelope.to_bytes()
        )
        await uow.commit()
    return Outcome(True, incident_id, "withdrawn")


async def get_incident_status(
    incident_id: uuid.UUID, *, principal: Principal, uow: UnitOfWork
) -> dict[str, Any]:
    """An incident's receipt for its own force: its status, each child's outcome and each
    notification's life (no child data)."""
    async with uow:
        row = (
            await uow.conn.execute(select(incidents).where(incidents.c.incident_id == incident_id))
        ).first()
        if row is None or row.force_code != principal.force_code:
            raise Problem(404, "Not found", "No such incident for your force.")
        [receipt] = await receipts_of(uow.conn, [row])
    return receipt


async def put_force(
    force_code: str, *, name: str, fields: list[str], default_la_code: str | None,
    uow: UnitOfWork, now: datetime,
) -> bool:
    """Create or replace a force and its disclosure profile; True when it was created.

    `default_la_code` None keeps the stored one: a force's default LA is never unset.
    """
    unknown = sorted(set(fields) - set(DISCLOSABLE_FIELDS))
    if unknown:
        raise Problem(422, "Invalid request body", "Unknown disclosure fields.",
                      extra={"errors": [{"field": "disclosure_profile.fields", "message":
                                         f"each must be one of {', '.join(DISCLOSABLE_FIELDS)}"}]})
    async with uow:
        existed = (
            await uow.conn.execute(
                select(forces.c.force_code).where(forces.c.force_code == force_code)
                .with_for_update()
            )
        ).first()
        stmt = insert(forces).values(force_code=force_code, name=name,
                                     disclosure_profile={"fields": fields},
                                     default_la_code=default_la_code, updated_at=now)
        await uow.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["force_code"],
                set_={"name": name, "disclosure_profile": {"fields": fields}, "updated_at": now,
                      "default_la_code": func.coalesce(stmt.excluded.default_la_code,
                                                       forces.c.default_la_code)},
            )
        )
        await uow.commit()
    return existed is None


async def get_force(force_code: str, *, uow: UnitOfWork) -> dict[str, Any]:
    """A force and its disclosure profile."""
    async with uow:
        row = (
            await uow.conn.execute(select(forces).where(forces.c.force_code == force_code))
        ).first()
    if row is None:
        raise Problem(404, "Not found", "No such force.")
    return {"force_code": row.force_code, "name": row.name,
            "disclosure_profile": {"fields": row.disclosure_profile.get("fields", [])},
            "default_la_code": row.default_la_code}
