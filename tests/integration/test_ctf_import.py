"""A school's Common Transfer File imported as its roll, through the API and the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.matcher.models import roster_imports
from tests.support.ids import next_urn
from tests.support.registry import opened_roll, post_roster, register_school, run_cli
from tests.support.registry_files import ctf_file, roll

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(matcher_engine: AsyncEngine) -> AsyncEngine:
    """The registry's tests act as the matcher."""
    return matcher_engine


async def roll_of(engine: AsyncEngine, urn: str) -> dict[str, Any]:
    return {row["upn"]: row for row in await opened_roll(engine, urn)}


async def post_ctf(registry: Any, urn: str, data: bytes, admin: dict[str, str],
                   content_type: str = "application/xml") -> Any:
    return await registry.post(f"/v1/schools/{urn}/roster", content=data,
                               headers=admin | {"Content-Type": content_type})


async def test_a_ctf_replaces_the_roll_through_the_api(registry, admin, engine) -> None:
    urn, unit = next_urn(), next_urn()
    for school in (urn, unit):
        await register_school(engine, school)
    await post_roster(registry, urn, roll(urn, 7), admin)
    data = ctf_file("oak-road-primary", urn=urn, pru_urn=unit)
    answer = await post_ctf(registry, urn, data, admin)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"urn": urn, "rows": 4, "replaced": 7, "skipped": 1}
    got = await roll_of(engine, urn)
    assert sorted(got) == ["B332200115003", "J332200116001", "Q332200116005", "Y332200116002"]
    oliver = got["Y332200116002"]
    assert (oliver["preferred_name"], oliver["former_family_name"],
            oliver["enrolment_status"]) == ("Ollie", "Smith", "M")
    assert got["B332200115003"]["on_roll_to"].isoformat() == "2026-07-22"
    async with engine.connect() as conn:
        last = (await conn.execute(select(roster_imports).where(roster_imports.c.urn == urn)
                                   .order_by(roster_imports.c.id.desc()))).first()
    assert last is not None and last.sha256 == hashlib.sha256(data).hexdigest()
    # the unit's own CTF (text/xml, an older version) registers him there too
    second = await post_ctf(registry, unit, ctf_file("riverside-learning-centre", urn=urn,
                                                     pru_urn=unit), admin, "text/xml")
    assert second.status_code == 200, second.text
    assert (await roll_of(engine, unit))["Y332200116002"]["enrolment_status"] == "S"


async def test_a_bad_ctf_is_refused_whole_and_the_old_roll_stays(registry, admin, engine) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    await post_roster(registry, urn, roll(urn, 3), admin)
    data = ctf_file("oak-road-primary", urn=urn).replace(
        b"<DOB>2016-11-08</DOB>", b"<DOB>8 Nov 2016</DOB>")
    answer = await post_ctf(registry, urn, data, admin)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["errors"] == [{"row": 5, "field": "DOB",
                               "message": "must be a date as YYYY-MM-DD (xs:date)"}]
    assert "Zainab" not in answer.text and "Nov" not in answer.text
    assert len(await roll_of(engine, urn)) == 3
    other = next_urn()
    wrong = await post_ctf(registry, other, ctf_file("oak-road-primary", urn=urn), admin)
    assert wrong.status_code in (404, 422)
    await register_school(engine, other)
    wrong = await post_ctf(registry, other, ctf_file("oak-road-primary", urn=urn), admin)
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["message"] == (
        f"the file is the roll of school {urn}, not {other}")


async def test_an_entity_bomb_is_refused(registry, admin, engine) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    bomb = (b"<?xml version='1.0'?><!DOCTYPE CTfile [<!ENTITY a 'aaaaaaaaaa'>"
            + b"".join(f"<!ENTITY a{i} '{'&a;' * 10}'>".encode() for i in range(1))
            + b"]><CTfile>&a0;</CTfile>")
    answer = await post_ctf(registry, urn, bomb, admin)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["message"] == (
        "DTDs, entities and external references are refused")


async def test_the_cli_imports_a_ctf_for_the_school_it_names(tmp_path, engine, cli_env,
                                                            capsys) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    path = tmp_path / "OakRoad_CTF_to_self.xml"
    path.write_bytes(ctf_file("oak-road-primary", urn=urn))
    assert await asyncio.to_thread(run_cli, "roster", "import", str(path)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["schools"], summary["skipped"]) == (4, 1, 1)
    assert len(await roll_of(engine, urn)) == 4
    path.write_bytes(path.read_bytes().replace(b"<Sex>F</Sex>", b"<Sex>female</Sex>", 1))
    assert await asyncio.to_thread(run_cli, "roster", "import", str(path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["daybreak: invalid roster: 1 problem(s); nothing was imported",
                   "daybreak: pupil 1: Sex: must be one of F, M, U, X"]
