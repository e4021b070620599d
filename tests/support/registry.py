"""Seed schools and rolls straight into the matcher's tables."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert

from services.common.db import standalone_uow
from services.common.settings import Settings
from services.matcher.directory import announce
from services.matcher.models import local_authorities, pupils, roster_imports, schools


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
        if pupil_rows:
            await uow.conn.execute(insert(pupils), pupil_rows)
        for urn in {p["urn"] for p in pupil_rows}:
            await uow.conn.execute(insert(roster_imports).values(
                urn=urn, rows=0, sha256="0" * 64, imported_by="test"))
        await announce(uow.conn, topic_prefix=settings.topic_prefix, now=datetime.now(UTC),
                       la_codes=las, urns=[s["urn"] for s in school_rows])
        await uow.commit()
