"""Registry use cases: schools, their rolls and calendars, and GIAS imports (local authorities:
services/matcher/local_authorities.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from operator import attrgetter
from typing import Any, BinaryIO, Literal

from sqlalchemy import delete, null, select
from sqlalchemy.dialects.postgresql import insert

from services.common.db import UnitOfWork, any_of
from services.common.escalation import DEFAULT_ESCALATION
from services.common.problems import Problem
from services.common.sealing import sealing_of
from services.matcher.calendars import replace_days
from services.matcher.ctf import read_ctf
from services.matcher.directory import announce, announce_calendars
from services.matcher.models import (
    la_calendar_days,
    local_authorities,
    pupils,
    roster_imports,
    school_calendar_days,
    schools,
)
from services.matcher.readiness import school_readiness
from services.matcher.records import Pupil
from services.matcher.registry_files import (
    Establishment,
    RejectedFile,
    RosterFile,
    RowProblem,
    decode_csv,
    parse_gias,
    read_roster,
    unknown_urn_rows,
)
from services.matcher.registry_models import URN_PATTERN, SchoolIn, WebhookIn, field_problem
from services.matcher.roll import next_ids, stored_columns, stored_records

RosterFormat = Literal["csv", "ctf"]

MAX_REPORTED = 100
COPY_CHUNK = 50_000
COPY_TIMEOUT_S = 900.0
Progress = Callable[[int, int], None]
ESCALATION_FIELDS = ("deputy_after_minutes", "la_after_minutes")
CALENDAR_HEADER = ("urn", "date", "kind")
LA_CALENDAR_HEADER = ("date", "kind")


class ImportRejected(Problem):
    """A CSV file was refused whole (422); `problems` holds every row-numbered reason."""

    def __init__(self, problems: Sequence[RowProblem], *, title: str = "Invalid CSV file") -> None:
        super().__init__(
            422, title, f"{len(problems)} problem(s); nothing was changed.",
            extra={"errors": [p.as_dict() for p in problems[:MAX_REPORTED]],
                   "error_count": len(problems)},
        )
        self.problems = tuple(problems)


@dataclass(frozen=True)
class ImportResult:
    """What a roster import did: rows written, rows of the previous roll(s) replaced."""

    rows: int
    replaced: int
    schools: int = 1
    sha256: str = ""
    skipped: int = 0  # a CTF's guests and others not on this school's roll


@dataclass(frozen=True)
class GiasResult:
    """What a GIAS import did."""

    schools: int
    created: int
    updated: int
    local_authorities_created: int


async def _ensure_local_authorities(
    uow: UnitOfWork, codes: Iterable[str], now: datetime
) -> list[str]:
    """Create missing LAs as `LA <code>`, never renaming one; return the codes created."""
    rows = [{"la_code": c, "name": f"LA {c}", "updated_at": now} for c in sorted(set(codes))]
    if not rows:
        return []
    created = await uow.conn.execute(
        insert(local_authorities).values(rows).on_conflict_do_nothing()
        .returning(local_authorities.c.la_code)
    )
    return list(created.scalars())


def _webhook(given: WebhookIn | None, stored: Mapping[str, str] | None) -> dict[str, str] | None:
    """The webhook to store; a PUT without a secret keeps the stored one for the same URL."""
    if given is None:
        return None
    if given.secret is not None:
        return {"url": given.url, "secret": given.secret.get_secret_value()}
    if stored and stored.get("url") == given.url and stored.get("secret"):
        return {"url": given.url, "secret": stored["secret"]}
    raise field_problem("webhook.secret", "required", "A new webhook URL needs a secret.")


def _escalation(body: SchoolIn, current: Any) -> dict[str, int]:
    """The escalation minutes a PUT sets; omitted ones keep the stored (or default) value."""
    given = {k: v for k in ESCALATION_FIELDS if (v := getattr(body, k)) is not None}
    merged = {k: getattr(current, k) if current is not None else DEFAULT_ESCALATION[k]
              for k in ESCALATION_FIELDS} | given
    if merged["deputy_after_minutes"] > merged["la_after_minutes"]:
        raise field_problem("deputy_after_minutes", "must not exceed la_after_minutes")
    return given


async def put_school(
    urn: str, *, body: SchoolIn, uow: UnitOfWork, now: datetime, topic_prefix: str
) -> bool:
    """Create or replace a school's registration (GIAS facts are kept); True when created."""
    async with uow:
        current = (await uow.conn.execute(
            select(schools.c.webhook, schools.c.deputy_after_minutes, schools.c.la_after_minutes,
                   schools.c.la_code).where(schools.c.urn == urn).with_for_update()
        )).first()
        webhook = _webhook(body.webhook, current.webhook if current else None)
        escalation = _escalation(body, current)
        created_las = await _ensure_local_authorities(uow, [body.la_code], now)
        values: dict[str, Any] = {
            "name": body.name, "la_code": body.la_code, "postcode": body.postcode,
            "participates": body.participates,
            "day_starts_at": time.fromisoformat(body.day_starts_at),
            "contacts": [c.model_dump() for c in body.contacts],
            "webhook": null() if webhook is None else webhook, "updated_at": now,
        }
        if body.status is not None:
            values["status"] = body.status
        values.update(escalation)
        await uow.conn.execute(
            insert(schools).values(urn=urn, **values)
            .on_conflict_do_update(index_elements=["urn"], set_=values)
        )
        # a new school, or one that moved LA, follows another LA's term dates
        moved = current is None or current.la_code != body.la_code
        await announce(uow.conn, topic_prefix=topic_prefix, now=now, urns=[urn],
                       la_codes=created_las, calendars=[urn] if moved else [])
        await uow.commit()
    return current is None


async def get_school(urn: str, *, uow: UnitOfWork, now: datetime) -> dict[str, Any]:
    """A school as an admin sees it (never the webhook secret) and its readiness as of `now`."""
    async with uow:
        row = (await uow.conn.execute(select(schools).where(schools.c.urn == urn))).first()
        last = (await uow.conn.execute(
            select(roster_imports.c.rows, roster_imports.c.imported_at)
            .where(roster_imports.c.urn == urn).order_by(roster_imports.c.id.desc()).limit(1)
        )).first()
        problems = await school_readiness(uow.conn, [urn], now=now)
    if row is None:
        raise Problem(404, "Not found", "No such school.")
    webhook = row.webhook or None
    return {
        "urn": row.urn, "name": row.name, "la_code": row.la_code, "postcode": row.postcode,
        "status": row.status, "phase": row.phase, "low_age": row.low_age,
        "high_age": row.high_age, "participates": row.participates,
        "day_starts_at": row.day_starts_at.strftime("%H:%M"), "contacts": row.contacts,
        "webhook": webhook and {"url": webhook["url"], "has_secret": bool(webhook.get("secret"))},
        "deputy_after_minutes": row.deputy_after_minutes,
        "la_after_minutes": row.la_after_minutes,
        "roster": last and {"rows": last.rows, "imported_at": last.imported_at.isoformat()},
        "ready": not problems, "problems": [p.as_dict() for p in problems],
        "updated_at": row.updated_at.isoformat(),
    }


def _binary(source: str | bytes | BinaryIO) -> BinaryIO:
    if isinstance(source, str):
        return io.BytesIO(source.encode("utf-8"))
    if isinstance(source, bytes):
        return io.BytesIO(source)
    return source


def _read(raw: BinaryIO, urn: str | None, fmt: RosterFormat) -> tuple[RosterFile, int]:
    """Parse and validate (in a worker thread); a multi-school file is grouped by school.
    Also how many pupils a CTF skipped as not on roll."""
    try:
        if fmt == "ctf":
            roll = read_ctf(raw, urn=urn)
            return roll.roster, roll.skipped
        parsed = read_roster(raw, urn=urn)
    except RejectedFile as rejected:
        raise ImportRejected(rejected.problems, title="Invalid roster") from None
    if urn is None:
        parsed.pupils.sort(key=attrgetter("urn"))
    return parsed, 0


async def _school_urns(uow: UnitOfWork, urns: Sequence[str], *, lock: bool = False) -> set[str]:
    """Which of the URNs are registered schools; `lock` (in URN order, against deadlocks)
    makes concurrent imports of one roll queue up instead of both inserting."""
    query = select(schools.c.urn).where(schools.c.urn == any_of(urns))
    if lock:
        query = query.order_by(schools.c.urn).with_for_update()
    return set((await uow.conn.execute(query)).scalars())


async def _copy_roll(uow: UnitOfWork, rows: list[Pupil], *, now: datetime,
                     on_progress: Progress | None) -> None:
    """COPY the rows in chunks, each row sealed (in a worker thread) under this year's roll
    key and bound to the id drawn for it (services/matcher/roll.py)."""
    sealing = sealing_of(uow.conn)
    columns = list(stored_columns(sealing))
    driver: Any = (await uow.conn.get_raw_connection()).driver_connection
    for start in range(0, len(rows), COPY_CHUNK):
        chunk = rows[start:start + COPY_CHUNK]
        ids = await next_ids(uow.conn, len(chunk))
        records = await asyncio.to_thread(stored_records, sealing, chunk, ids, at=now)
        await driver.copy_records_to_table(
            pupils.name, schema_name=pupils.schema, columns=columns, records=records,
            timeout=COPY_TIMEOUT_S)
        if on_progress is not None:
            on_progress(start + len(chunk), len(rows))


async def import_roster(
    urn: str | None, source: str | bytes | BinaryIO, *, uow: UnitOfWork, imported_by: str,
    now: datetime, on_progress: Progress | None = None, fmt: RosterFormat = "csv",
) -> ImportResult:
    """Replace one school's roll (or, with urn None, every roll the file names) atomically.
    `fmt` "ctf": the file is a Common Transfer File (ctf.py), the roll of one school.

    A binary stream must be seekable: row numbers for some problems take a second pass.
    """
    raw = _binary(source)
    if urn is not None:
        async with uow:
            if not await _school_urns(uow, [urn]):
                raise Problem(404, "Not found", "No such school.")
    parsed, skipped = await asyncio.to_thread(_read, raw, urn, fmt)
    rows, sha256 = parsed.pupils, parsed.sha256
    counts = Counter(pupil.urn for pupil in rows)
    urns = [urn] if urn is not None else sorted(counts)
    async with uow:
        missing = set(urns) - await _school_urns(uow, urns, lock=True)
        if missing and urn is not None:
            raise Problem(404, "Not found", "No such school.")
        if missing and fmt == "ctf":
            raise ImportRejected([RowProblem(None, None, "the file's source school is not "
                                             "registered")], title="Invalid roster")
        if missing:
            problems = await asyncio.to_thread(unknown_urn_rows, raw, missing)
            raise ImportRejected(problems, title="Invalid roster")
        replaced = (await uow.conn.execute(
            delete(pupils).where(pupils.c.urn == any_of(urns))
        )).rowcount
        # the statements above began the transaction (SQLAlchemy begins lazily), so COPY on
        # the same driver connection is inside it: a failure leaves the old roll in place
        if rows:
            await _copy_roll(uow, rows, now=now, on_progress=on_progress)
        if urns:
            await uow.conn.execute(insert(roster_imports), [
                {"urn": u, "rows": counts[u], "sha256": sha256,
                 "imported_by": imported_by[:64], "imported_at": now} for u in urns
            ])
        await uow.commit()
    return ImportResult(rows=len(rows), replaced=replaced, schools=len(urns), sha256=sha256,
                        skipped=skipped)


async def _calendars_moved(uow: UnitOfWork, found: Sequence[Establishment],
                           before: Mapping[str, str]) -> list[str]:
    """The schools whose LA changed, and the new ones in an LA with term dates: their
    calendars change (a new school in an LA without them keeps the default it already has)."""
    las = {s.la_code for s in found if s.urn not in before}
    dated = set((await uow.conn.execute(select(la_calendar_days.c.la_code).distinct().where(
        la_calendar_days.c.la_code == any_of(sorted(las))))).scalars()) if las else set()
    return [s.urn for s in found if (before[s.urn] != s.la_code if s.urn in before
                                     else s.la_code in dated)]


def _gias_row(school: Establishment, now: datetime) -> dict[str, Any]:
    return {"urn": school.urn, "name": school.name, "la_code": school.la_code,
            "postcode": school.postcode, "status": school.status, "phase": school.phase,
            "low_age": school.low_age, "high_age": school.high_age, "updated_at": now}


def _parse_gias(data: bytes) -> list[Establishment]:
    try:
        return parse_gias(decode_csv(data))
    except RejectedFile as rejected:
        raise ImportRejected(rejected.problems, title="Invalid GIAS file") from None


async def import_gias(
    source: bytes | BinaryIO, *, uow: UnitOfWork, now: datetime, topic_prefix: str
) -> GiasResult:
    """Upsert schools from a GIAS establishments CSV, keeping what admins set; all or nothing."""
    data = source if isinstance(source, bytes) else source.read()
    found = await asyncio.to_thread(_parse_gias, data)
    urns = [school.urn for school in found]
    async with uow:
        existing = {r.urn: r.la_code for r in await uow.conn.execute(
            select(schools.c.urn, schools.c.la_code).where(schools.c.urn == any_of(urns)))}
        las_created = await _ensure_local_authorities(uow, {s.la_code for s in found}, now)
        if found:
            stmt = insert(schools)
            kept = ("name", "la_code", "postcode", "status", "phase", "low_age", "high_age",
                    "updated_at")
            await uow.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["urn"], set_={c: stmt.excluded[c] for c in kept}
                ),
                [_gias_row(school, now) for school in found],
            )
        await announce(uow.conn, topic_prefix=topic_prefix, now=now, urns=urns,
                       la_codes=las_created,
                       calendars=await _calendars_moved(uow, found, existing))
        await uow.commit()
    return GiasResult(schools=len(found), created=len(found) - len(existing),
                      updated=len(existing), local_authorities_created=len(las_created))


@dataclass(frozen=True)
class CalendarDay:
    """One override row of a calendar CSV."""

    row: int
    urn: str
    day: date
    kind: str


@dataclass(frozen=True)
class CalendarResult:
    """What a calendar import did: override days written and replaced, schools touched."""

    days: int
    replaced: int
    schools: int


def parse_calendar(data: bytes, *, urn: str | None = None) -> list[CalendarDay]:
    """Validate a `urn,date,kind` CSV whole; with `urn`, every row must name that school."""
    return _parse_days(data, CALENDAR_HEADER, urn=urn)


def parse_la_calendar(data: bytes) -> list[CalendarDay]:
    """Validate an LA's `date,kind` CSV (its term dates) whole; the rows name no school."""
    return _parse_days(data, LA_CALENDAR_HEADER)


def _parse_days(data: bytes, columns: tuple[str, ...], *, urn: str | None = None
                ) -> list[CalendarDay]:
    reader = csv.reader(io.StringIO(decode_csv(data)))
    header = [h.strip().lower() for h in next(reader, [])]
    if tuple(header) != columns:
        raise ImportRejected([RowProblem(1, None, f"header must be {','.join(columns)}")],
                             title="Invalid calendar")
    days: list[CalendarDay] = []
    problems: list[RowProblem] = []
    seen: dict[tuple[str, date], int] = {}
    for number, fields in enumerate(reader, start=2):
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) != len(columns):
            problems.append(RowProblem(number, None, f"expected {len(columns)} fields, "
                                                     f"found {len(fields)}"))
            continue
        found = _calendar_row(number, dict(zip(columns, (f.strip() for f in fields),
                                               strict=True)), urn=urn)
        if isinstance(found, list):
            problems += found
            continue
        first = seen.setdefault((found.urn, found.day), number)
        if first != number:
            problems.append(RowProblem(number, "date", f"listed twice (first on row {first})"))
            continue
        days.append(found)
    if problems:
        raise ImportRejected(problems, title="Invalid calendar")
    return days


def _calendar_row(number: int, fields: dict[str, str], *, urn: str | None
                  ) -> CalendarDay | list[RowProblem]:
    """One row, or what is wrong with it; a row with no `urn` column names no school."""
    problems: list[RowProblem] = []
    row_urn = fields.get("urn", "")
    if "urn" in fields and not re.fullmatch(URN_PATTERN, row_urn):
        problems.append(RowProblem(number, "urn", "must be a 6 or 7 digit URN"))
    elif urn is not None and row_urn != urn:
        problems.append(RowProblem(number, "urn", "must be the school in the URL"))
    day = date.min
    try:
        day = date.fromisoformat(fields["date"])
    except ValueError:
        problems.append(RowProblem(number, "date", "must be a date as YYYY-MM-DD"))
    kind = fields["kind"].lower()
    if kind not in ("closed", "open"):
        problems.append(RowProblem(number, "kind", "must be closed or open"))
    return problems or CalendarDay(number, row_urn, day, kind)


async def import_calendar(
    urn: str | None, data: bytes, *, uow: UnitOfWork, now: datetime, topic_prefix: str,
) -> CalendarResult:
    """Replace the overrides of one school (or, with urn None, of every school the file
    names) atomically; a bad row or an unknown school changes nothing."""
    days = parse_calendar(data, urn=urn)
    urns = [urn] if urn is not None else sorted({d.urn for d in days})
    async with uow:
        missing = set(urns) - await _school_urns(uow, urns, lock=True)
        if missing and urn is not None:
            raise Problem(404, "Not found", "No such school.")
        if missing:
            first: dict[str, int] = {}
            for d in days:
                first.setdefault(d.urn, d.row)
            raise ImportRejected([
                RowProblem(first[u], "urn", "no school with this URN")
                for u in sorted(missing, key=first.__getitem__)
            ], title="Invalid calendar")
        replaced = 0
        if urns:
            own = school_calendar_days.c
            replaced = await replace_days(
                uow.conn, school_calendar_days, (own.urn == any_of(urns))
                & (own.source == "override"),
                [{"urn": d.urn, "day": d.day, "kind": d.kind, "source": "override"}
                 for d in days])
        await announce_calendars(uow.conn, urns, topic_prefix=topic_prefix, now=now)
        await uow.commit()
    return CalendarResult(days=len(days), replaced=replaced, schools=len(urns))
