"""The school rolls at rest (`matcher.pupils`): each row's child data (UPN, names, birth date,
gender, address, postcode) is sealed whole in its `child` column under the roll's key class
(services/common/crypto.py `roll_period`: one key per year, never crypto-shredded), bound to
'matcher.pupils:<id>:child', so a value copied to another pupil's row does not open. The
school, enrolment status and roll dates stay clear (SQL filters and the index's open schools
read them); the UPN, the one child value SQL looks up, is also kept as its keyed hash
(`upn_hash`, HMAC-SHA256 under the keystore's lookup key). Rows stored before sealing are
clear and read as they are until `daybreak reseal` seals them (`reseal_roll`), which also
seals rows of an older year's roll key again under this year's (rotation)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, bindparam, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.crypto import SealError, roll_period
from services.common.sealed_columns import aad
from services.common.sealing import ChildSealing, sealing_of
from services.common.settings import MissingSetting
from services.matcher.models import pupils
from services.matcher.records import EnrolmentStatus, Pupil
from services.matcher.roster import ROSTER_HEADER, parse_iso_date

log = logging.getLogger(__name__)
PUPILS = "matcher.pupils"
SEALED_FIELDS = ("upn", "given_name", "preferred_name", "family_name", "former_family_name",
                 "date_of_birth", "gender", "address_line1", "postcode")
CLEAR_FIELDS = ("urn", "enrolment_status", "on_roll_from", "on_roll_to")
SEALED_COLUMNS = ("id", *CLEAR_FIELDS, "child", "upn_hash")  # what a sealed row is written as
CLEAR_COLUMNS = ("id", *ROSTER_HEADER)  # DAYBREAK_SEAL_CHILD_DATA off: as before sealing
# a sealed row's clear child columns: empty
EMPTIED: dict[str, Any] = {name: None if name in ("given_name", "family_name", "date_of_birth")
                           else "" for name in SEALED_FIELDS}


def child_aad(pupil_id: int) -> str:
    """Where a roll row's sealed child data belongs."""
    return aad(PUPILS, pupil_id, column="child")


def stored_columns(sealing: ChildSealing) -> tuple[str, ...]:
    """The columns `stored_records` gives, in order."""
    return SEALED_COLUMNS if sealing.seal_new else CLEAR_COLUMNS


def stored_records(sealing: ChildSealing, rows: Sequence[Pupil], ids: Sequence[int], *,
                   at: datetime) -> list[tuple[Any, ...]]:
    """The rows as stored (`stored_columns`), each sealed under `at`'s roll key and bound to
    its id; CPU work, for a worker thread."""
    if not sealing.seal_new:
        return [(pupil_id, *(getattr(p, name) for name in ROSTER_HEADER))
                for pupil_id, p in zip(ids, rows, strict=True)]
    keyring = sealing.keyring
    return [(pupil_id, p.urn, p.enrolment_status, p.on_roll_from, p.on_roll_to,
             keyring.seal_roll(_document(p), aad=child_aad(pupil_id), at=at),
             keyring.lookup_hash(p.upn) if p.upn else None)
            for pupil_id, p in zip(ids, rows, strict=True)]


def _document(pupil: Pupil) -> dict[str, str]:
    """What is sealed of a row: its child fields, the empty ones left out."""
    doc = {name: value for name in SEALED_FIELDS
           if name != "date_of_birth" and (value := getattr(pupil, name))}
    doc["date_of_birth"] = pupil.date_of_birth.isoformat()
    return doc


async def next_ids(conn: AsyncConnection, count: int) -> list[int]:
    """`count` new pupil ids, drawn now: a row's id is sealed into it, so it must be known
    before the row is written."""
    sequence = func.pg_get_serial_sequence(PUPILS, "id")
    drawn = await conn.execute(select(func.nextval(sequence))
                               .select_from(func.generate_series(1, count)))
    return list(drawn.scalars())


async def insert_pupils(conn: AsyncConnection, rows: Sequence[Pupil], *, at: datetime) -> None:
    """Write roll rows as the import does, sealed (a few rows: tests, the sandbox)."""
    if not rows:
        return
    sealing = sealing_of(conn)
    columns = stored_columns(sealing)
    records = stored_records(sealing, rows, await next_ids(conn, len(rows)), at=at)
    await conn.execute(pupils.insert(), [dict(zip(columns, r, strict=True)) for r in records])


def opened_pupil(sealing: ChildSealing, row: Any) -> Pupil:
    """A stored roll row as a Pupil: its sealed child data opened (a clear row as it is);
    SealError when it was tampered with or copied from another row."""
    if row.child is None:
        return Pupil(**{name: getattr(row, name) for name in ROSTER_HEADER})
    doc = sealing.keyring.open(row.child, aad=child_aad(row.id))
    if not isinstance(doc, dict):
        raise SealError("a roll row's sealed part is not a document")
    return Pupil(
        urn=row.urn, upn=doc.get("upn", ""), given_name=doc.get("given_name", ""),
        preferred_name=doc.get("preferred_name", ""), family_name=doc.get("family_name", ""),
        former_family_name=doc.get("former_family_name", ""),
        date_of_birth=parse_iso_date(doc["date_of_birth"]), gender=doc.get("gender", ""),
        address_line1=doc.get("address_line1", ""), postcode=doc.get("postcode", ""),
        enrolment_status=cast(EnrolmentStatus, row.enrolment_status),
        on_roll_from=row.on_roll_from, on_roll_to=row.on_roll_to)


def opened_roll(sealing: ChildSealing, rows: Sequence[Any]) -> tuple[list[Pupil], int]:
    """A batch of stored rows as Pupils, and how many did not open (tampered or moved: left
    out, so the index still serves every other row); CPU work, for a worker thread. No
    keystore fails the whole batch (SealError or MissingSetting), never each row."""
    if any(row.child is not None for row in rows):
        _ = sealing.keyring
    opened: list[Pupil] = []
    failed = 0
    for row in rows:
        try:
            opened.append(opened_pupil(sealing, row))
        except (SealError, KeyError, ValueError):
            failed += 1
    return opened, failed


def upn_is(sealing: ChildSealing, upn: str) -> ColumnElement[bool]:
    """The SQL condition of a roll row holding `upn`: its keyed hash, or the clear UPN of a
    row stored before sealing."""
    clear = pupils.c.upn == upn
    try:
        return or_(pupils.c.upn_hash == sealing.lookup_hash(upn), clear)
    except (SealError, MissingSetting):  # no keystore: only clear rows can be found
        return clear


async def reseal_roll(engine: AsyncEngine, *, now: datetime, batch: int = 1000) -> int:
    """Seal under this year's roll key every roll row stored clear (before sealing) or
    sealed under an older year's (rotation: the old keys still open until then); how many
    were sealed. A row that does not open is left as it is, and logged by id."""
    p = pupils.c
    current = f"dk1.{roll_period(now)}."
    stale = or_(p.child.is_(None), not_(p.child.startswith(current)))
    done, after = 0, 0
    if not sealing_of(engine).seal_new:
        return 0
    while True:
        async with engine.begin() as conn:
            sealing = sealing_of(conn)
            found = (await conn.execute(
                select(pupils).where(stale, p.id > after).order_by(p.id).limit(batch)
                .with_for_update(skip_locked=True))).all()
            values = []
            for row in found:
                try:
                    pupil = opened_pupil(sealing, row)
                except SealError:
                    log.warning("roll row %s does not open: left as it is", row.id)
                    continue
                [record] = stored_records(sealing, [pupil], [row.id], at=now)
                values.append({"pid": row.id, "sealed": record[-2], "hash": record[-1]})
            if values:
                await conn.execute(
                    update(pupils).where(p.id == bindparam("pid"))
                    .values(child=bindparam("sealed"), upn_hash=bindparam("hash"),
                            **EMPTIED), values)
        done += len(values)
        if len(found) < batch:
            return done
        after = found[-1].id

