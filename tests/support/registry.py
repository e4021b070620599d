"""The matcher's registry in tests: seed its tables straight, or use its API and CLI (the
`registry`, `admin` and `cli_env` fixtures)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.envelope import Envelope
from services.cli import main as cli_main
from services.common.app import create_app
from services.common.context import AppContext, utc_now
from services.common.db import UnitOfWork, standalone_uow
from services.common.models import outbox
from services.common.sealing import ChildSealing, sealing_of
from services.common.settings import Settings
from services.matcher.directory import announce
from services.matcher.models import (
    local_authorities,
    pupils,
    roster_imports,
    school_calendar_days,
    schools,
)
from services.matcher.records import Pupil
from services.matcher.registry import put_school
from services.matcher.registry_api import router
from services.matcher.registry_models import SchoolIn
from services.matcher.roll import insert_pupils, opened_pupil
from tests.support.api import running
from tests.support.tokens import bearer, person


def pupil(urn: str, upn: str, given: str, family: str, born: str, **kw: Any) -> dict[str, Any]:
    """A roll row with sensible defaults."""
    row: dict[str, Any] = {
        "urn": urn, "upn": upn, "given_name": given, "preferred_name": "",
        "family_name": family, "former_family_name": "", "date_of_birth": date.fromisoformat(born),
        "gender": "", "address_line1": "", "postcode": "", "enrolment_status": "C",
        "on_roll_from": None, "on_roll_to": None,
    }
    row.update(kw)
    return row


async def opened_roll(engine: AsyncEngine, urn: str) -> list[dict[str, Any]]:
    """A school's roll as the matcher opens it: each row's id and fields, in id order."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(pupils).where(pupils.c.urn == urn)
                                   .order_by(pupils.c.id))).all()
        sealing = sealing_of(conn)
    return [{"id": r.id} | dataclasses.asdict(opened_pupil(sealing, r)) for r in rows]


async def seed(settings: Settings, *, las: list[str], school_rows: list[dict[str, Any]],
               pupil_rows: list[dict[str, Any]]) -> None:
    """Insert local authorities, schools and roll rows in one transaction, announcing the LAs
    and schools on registry.v1 as the registry's own writes do."""
    async with standalone_uow(settings, "matcher") as uow:
        for la in las:
            await uow.conn.execute(
                insert(local_authorities).values(la_code=la, name=f"LA {la}")
            )
        for school in school_rows:
            await uow.conn.execute(insert(schools).values(**school))
        # sealed, as the import writes them (services/matcher/roll.py)
        await insert_pupils(uow.conn, [Pupil(**row) for row in pupil_rows],
                            at=datetime.now(UTC))
        for urn in {p["urn"] for p in pupil_rows}:
            await uow.conn.execute(insert(roster_imports).values(
                urn=urn, rows=0, sha256="0" * 64, imported_by="test"))
        await announce(uow.conn, topic_prefix=settings.topic_prefix, now=datetime.now(UTC),
                       la_codes=las, urns=[s["urn"] for s in school_rows])
        await uow.commit()


# --- the registry API and CLI, as the matcher serves them --------------------------------

SECRET = "whsec-" + "s3cr3t" * 4
PREFIX = "registry."  # the registry.v1 events direct calls stage (no relay publishes them)


@pytest.fixture
def registry_clock() -> Callable[[], datetime]:
    """The registry's clock (the real one); a module whose checks look ahead pins it."""
    return utc_now


@pytest.fixture
def registry_settings(settings: Settings) -> Settings:
    """The registry's settings (the session's); a module may stage its registry.v1 events
    under a topic prefix of its own."""
    return settings


@pytest.fixture
async def registry(registry_settings: Settings, matcher_engine: AsyncEngine,
                   registry_clock: Callable[[], datetime]) -> AsyncIterator[httpx.AsyncClient]:
    """The registry's routes in-process, on the matcher's own role."""
    ctx = AppContext(settings=registry_settings, engine=matcher_engine,
                     registry=CollectorRegistry(), clock=registry_clock)
    app = create_app(title="registry under test", service="matcher", ctx=ctx)
    app.include_router(router)
    async with running(app) as client:
        yield client


@pytest.fixture
def admin(settings: Settings) -> dict[str, str]:
    """An admin's bearer header."""
    return bearer(person("admin", subject="admin@example.test"))


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `daybreak` CLI pointed at the session database as the matcher, with its keystore
    (a roll import seals the roll)."""
    monkeypatch.setenv("DAYBREAK_MATCHER_DATABASE_URL", settings.matcher_database_url)
    monkeypatch.setenv("DAYBREAK_KEYSTORE_DIR", str(settings.keystore_dir))
    monkeypatch.setenv("DAYBREAK_KEK_FILE", str(settings.kek_file))


def school_body(la_code: str = "330", **changes: Any) -> dict[str, Any]:
    """A valid school for `PUT /v1/schools/{urn}`, with a DSL and a webhook."""
    return {"name": "Oak Road Primary", "la_code": la_code, "postcode": "dy1 2ab",
            "participates": True, "day_starts_at": "08:40",
            "contacts": [{"role": "dsl", "name": "Dana Lead", "email": "dsl@oak.sch.uk"}],
            "webhook": {"url": "https://mis.oak.sch.uk/hooks/daybreak", "secret": SECRET}
            } | changes


async def register_school(engine: AsyncEngine, urn: str, la_code: str = "330") -> None:
    """Put a school through the registry's use case (`engine`: the matcher's)."""
    body = SchoolIn.model_validate(school_body(la_code))
    await put_school(urn, body=body, uow=UnitOfWork(engine), now=datetime.now(UTC),
                     topic_prefix=PREFIX)


async def post_roster(api: httpx.AsyncClient, urn: str, text: str,
                      headers: dict[str, str]) -> httpx.Response:
    """Upload a roster file for the school."""
    return await api.post(f"/v1/schools/{urn}/roster", content=text.encode(),
                          headers=headers | {"Content-Type": "text/csv; charset=utf-8"})


async def overrides(engine: AsyncEngine, urn: str, source: str = "override"
                    ) -> list[tuple[date, str]]:
    """The school's calendar overrides (or, with source "term", its own term dates), by day."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(school_calendar_days.c.day, school_calendar_days.c.kind)
            .where(school_calendar_days.c.urn == urn, school_calendar_days.c.source == source)
            .order_by(school_calendar_days.c.day))
        return [(row.day, row.kind) for row in rows]


def run_cli(*argv: str) -> int:
    """`daybreak ARGV...`, in this process; the exit code."""
    return cli_main(list(argv))


def la_body(name: str = "Dudley", **changes: Any) -> dict[str, Any]:
    """A ready local authority for `PUT /v1/local-authorities/{la_code}`: a safeguarding
    contact, a review contact and a duty manager."""
    return {"name": name, "contacts": [
        {"role": "safeguarding", "name": "LADO desk", "email": "lado@la.example"},
        {"role": "review", "name": "Encompass team", "email": "encompass@la.example"},
        {"role": "duty_manager", "name": "Duty manager", "email": "duty@la.example"},
    ]} | changes


def ready_school_body(la_code: str, **changes: Any) -> dict[str, Any]:
    """A ready school for `PUT /v1/schools/{urn}`: a DSL and a deputy DSL."""
    return school_body(la_code, contacts=[
        {"role": "dsl", "name": "Dana Lead", "email": "dsl@oak.sch.uk"},
        {"role": "deputy_dsl", "name": "Dev Deputy", "email": "deputy@oak.sch.uk"},
    ]) | changes


async def staged_by_matcher(engine: AsyncEngine, settings: Settings, topic: str
                            ) -> list[Envelope[Any]]:
    """The events the matcher staged in its outbox for `topic` under this test's prefix, in
    order (`engine`: the matcher's or the owner's)."""
    async with engine.connect() as conn:
        values = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == f"{settings.topic_prefix}matcher",
            outbox.c.topic == settings.topic(topic)).order_by(outbox.c.id))).scalars().all()
    sealing = ChildSealing.from_settings(settings)  # the child data travels sealed
    return [sealing.parse(v) for v in values]
