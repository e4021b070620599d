"""SQL and template injection in registry records and roster rows: stored verbatim, not run."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.matcher.roster import ROSTER_HEADER
from tests.support.hostile import PAYLOADS
from tests.support.ids import next_la, next_urn
from tests.support.registry import opened_roll, post_roster, register_school, school_body
from tests.support.registry_files import pupil_row

pytestmark = pytest.mark.integration


def quoted_roster(urn: str) -> str:
    """A roster, written as a spreadsheet would quote it, with one payload per pupil."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ROSTER_HEADER, lineterminator="\n")
    writer.writeheader()
    for serial, payload in enumerate(PAYLOADS):
        writer.writerow(pupil_row(urn, serial, given_name=payload, family_name=payload,
                                  preferred_name=payload, former_family_name=payload,
                                  address_line1=payload))
    return out.getvalue()


async def test_registry_records_keep_injection_strings_verbatim(
    registry: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for payload in PAYLOADS:
        la, urn = next_la(), next_urn()
        contact = {"name": payload, "email": "o'neil+{{7*7}}@la.example"}
        put = await registry.put(f"/v1/local-authorities/{la}", headers=admin, json={
            "name": payload, "contacts": [contact | {"role": "safeguarding"}]})
        assert put.status_code == 201, put.text
        put = await registry.put(f"/v1/schools/{urn}", headers=admin, json=school_body(
            la, name=payload, contacts=[contact | {"role": "dsl"}]))
        assert put.status_code == 201, put.text
        got_la = (await registry.get(f"/v1/local-authorities/{la}", headers=admin)).json()
        got_school = (await registry.get(f"/v1/schools/{urn}", headers=admin)).json()
        for got, role in ((got_la, "safeguarding"), (got_school, "dsl")):
            assert got["name"] == payload
            assert got["contacts"] == [contact | {"role": role}]


async def test_roster_rows_keep_injection_strings_verbatim(
    registry: httpx.AsyncClient, admin: dict[str, str], engine: AsyncEngine
) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    response = await post_roster(registry, urn, quoted_roster(urn), admin)
    assert response.json() == {"urn": urn, "rows": len(PAYLOADS), "replaced": 0,
                               "skipped": 0}
    rows = [(r["given_name"], r["preferred_name"], r["family_name"], r["former_family_name"],
             r["address_line1"]) for r in await opened_roll(engine, urn)]
    assert sorted(rows) == sorted((p,) * 5 for p in PAYLOADS)
    again = await post_roster(registry, urn, quoted_roster(urn), admin)  # the table is still there
    assert again.json() == {"urn": urn, "rows": len(PAYLOADS), "replaced": len(PAYLOADS),
                            "skipped": 0}
