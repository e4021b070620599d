"""The matcher's registry against the real database: schools, LAs, rolls, GIAS and the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import UnitOfWork
from services.matcher.models import local_authorities, pupils, roster_imports, schools
from services.matcher.registry import ImportRejected, import_gias
from tests.support.ids import next_la, next_urn
from tests.support.registry import (
    PREFIX,
    SECRET,
    post_roster,
    register_school,
    run_cli,
    school_body,
)
from tests.support.registry_files import gias_file, pupil_row, roll, roster_csv
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(matcher_engine: AsyncEngine) -> AsyncEngine:
    """The registry's tests act as the matcher."""
    return matcher_engine


async def count(engine: AsyncEngine, table: Any, **where: str) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        return int((await conn.execute(query)).scalar_one())


async def test_local_authority_put_then_get_then_replace(registry, admin) -> None:
    code = next_la()
    body = {"name": "Dudley", "contacts": [
        {"role": "safeguarding", "name": "Sam Guard", "email": "mash@dudley.gov.uk"}]}
    created = await registry.put(f"/v1/local-authorities/{code.lower()}", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["la_code"] == code and created.json()["schools"] == 0
    replaced = await registry.put(f"/v1/local-authorities/{code}",
                                  json=body | {"name": "Dudley MBC"}, headers=admin)
    assert replaced.status_code == 200
    got = await registry.get(f"/v1/local-authorities/{code}", headers=admin)
    assert got.json()["name"] == "Dudley MBC"
    assert got.json()["contacts"][0]["role"] == "safeguarding"
    assert (await registry.get("/v1/local-authorities/NOPE1", headers=admin)).status_code == 404


async def test_school_put_get_never_returns_the_webhook_secret(registry, admin) -> None:
    urn, code = next_urn(), next_la()
    created = await registry.put(f"/v1/schools/{urn}", json=school_body(code), headers=admin)
    assert created.status_code == 201, created.text
    got = await registry.get(f"/v1/schools/{urn}", headers=admin)
    for answer in (created, got):
        assert SECRET not in answer.text
        assert answer.json()["webhook"] == {"url": "https://mis.oak.sch.uk/hooks/daybreak",
                                            "has_secret": True}
    view = got.json()
    assert (view["postcode"], view["day_starts_at"], view["status"]) == ("DY1 2AB", "08:40",
                                                                          "open")
    assert view["roster"] is None
    la = await registry.get(f"/v1/local-authorities/{code}", headers=admin)
    assert la.json()["name"] == f"LA {code}" and la.json()["schools"] == 1


async def test_school_replace_keeps_secret_for_same_url_only(registry, admin) -> None:
    urn = next_urn()
    await registry.put(f"/v1/schools/{urn}", json=school_body(), headers=admin)
    same_url = school_body(webhook={"url": "https://mis.oak.sch.uk/hooks/daybreak"},
                           status="closed")
    kept = await registry.put(f"/v1/schools/{urn}", json=same_url, headers=admin)
    assert kept.status_code == 200
    assert kept.json()["webhook"]["has_secret"] and kept.json()["status"] == "closed"
    moved = school_body(webhook={"url": "https://elsewhere.example/hook"})
    refused = await registry.put(f"/v1/schools/{urn}", json=moved, headers=admin)
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "webhook.secret", "message": "required"}]
    cleared = await registry.put(f"/v1/schools/{urn}", json=school_body(webhook=None),
                                 headers=admin)
    assert cleared.json()["webhook"] is None and cleared.json()["status"] == "closed"


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/schools/12345", school_body()),
    ("/v1/schools/{urn}", school_body(postcode="NOWHERE")),
    ("/v1/schools/{urn}", school_body(webhook={"url": "http://mis.example/h", "secret": SECRET})),
    ("/v1/schools/{urn}", school_body(day_starts_at="8:45")),
    ("/v1/schools/{urn}", school_body(contacts=[{"role": "head", "name": "X", "email": "x@y.z"}])),
])
async def test_invalid_school_is_422(registry, admin, path: str, body: dict[str, Any]) -> None:
    resp = await registry.put(path.format(urn=next_urn()), json=body, headers=admin)
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_only_admins_may_touch_the_registry(registry, admin, settings) -> None:
    urn = next_urn()
    await registry.put(f"/v1/schools/{urn}", json=school_body(), headers=admin)
    # a DSL's real token names the notifier alone (401 here); one addressed here lacks the scope
    dsl = bearer(person("dsl", schools=["103456"]), audience=["matcher"])
    real_dsl = bearer(person("dsl", schools=["103456"]))
    calls = [("GET", f"/v1/schools/{urn}", None), ("PUT", f"/v1/schools/{urn}", school_body()),
             ("GET", "/v1/local-authorities/330", None),
             ("POST", f"/v1/schools/{urn}/roster", None)]
    for method, path, body in calls:
        assert (await registry.request(method, path, json=body, headers=dsl)).status_code == 403
        assert (await registry.request(method, path, json=body,
                                       headers=real_dsl)).status_code == 401
        assert (await registry.request(method, path, json=body)).status_code == 401


async def test_good_roster_replaces_the_roll(registry, admin, engine) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    first = await post_roster(registry, urn, roll(urn, 3), admin)
    assert first.status_code == 200, first.text
    assert first.json() == {"urn": urn, "rows": 3, "replaced": 0, "skipped": 0}
    text = roll(urn, 2, start=100)
    second = await post_roster(registry, urn, text, admin)
    assert second.json() == {"urn": urn, "rows": 2, "replaced": 3, "skipped": 0}
    assert await count(engine, pupils, urn=urn) == 2
    async with engine.connect() as conn:
        last = (await conn.execute(select(roster_imports).where(roster_imports.c.urn == urn)
                                   .order_by(roster_imports.c.id.desc()))).first()
    assert last is not None
    assert (last.rows, last.imported_by) == (2, "admin@example.test")
    assert last.sha256 == hashlib.sha256(text.encode()).hexdigest()
    got = await registry.get(f"/v1/schools/{urn}", headers=admin)
    assert got.json()["roster"]["rows"] == 2


async def test_bad_roster_is_refused_whole_and_the_old_roll_stays(registry, admin, engine) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    await post_roster(registry, urn, roll(urn, 3), admin)
    rows = [pupil_row(urn, 10), pupil_row(urn, 11, date_of_birth="02/03/2016"),
            pupil_row(next_urn(), 12), pupil_row(urn, 13, upn="A801200005001"),
            pupil_row(urn, 14)]
    resp = await post_roster(registry, urn, roster_csv(*rows), admin)
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    errors = resp.json()["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [
        (3, "date_of_birth"), (4, "urn"), (5, "upn")]
    assert resp.json()["error_count"] == 3
    for secret in ("Zebedee", "Quibble", "02/03/2016", "2016-03-02", "A801200005001"):
        assert secret not in resp.text
    assert await count(engine, pupils, urn=urn) == 3


async def test_concurrent_imports_of_one_roll_do_not_mix(registry, admin, engine) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    answers = await asyncio.gather(post_roster(registry, urn, roll(urn, 3), admin),
                                   post_roster(registry, urn, roll(urn, 5, start=50), admin))
    assert [a.status_code for a in answers] == [200, 200]
    assert await count(engine, pupils, urn=urn) in (3, 5)


async def test_roster_for_unknown_school_is_404(registry, admin) -> None:
    urn = next_urn()
    resp = await post_roster(registry, urn, roll(urn, 1), admin)
    assert resp.status_code == 404


@pytest.mark.parametrize("content_type", ["application/json", "text/csv; charset=latin-1", ""])
async def test_roster_must_be_csv(registry, admin, engine, content_type: str) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    resp = await registry.post(f"/v1/schools/{urn}/roster", content=roll(urn, 1).encode(),
                          headers=admin | {"Content-Type": content_type})
    assert resp.status_code == 415
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_gias_import_upserts_schools_and_creates_missing_las(registry, admin, engine) -> None:
    kept_la, new_code = next_la(), next_la()
    await registry.put(f"/v1/local-authorities/{kept_la}", json={"name": "Kept Name"},
                       headers=admin)
    existing, added, closed = next_urn(), next_urn(), next_urn()
    await registry.put(f"/v1/schools/{existing}", json=school_body(kept_la), headers=admin)
    data = gias_file(
        f'{existing},{kept_la},"St Mary\u2019s C of E Primary",Open,Primary,4,11,DY1 2AB,x',
        f'{added},{new_code},"Ysgol G\u00fbn",Open,Secondary,11,16,,"1, High St"',
        f"{closed},{new_code},Old Mill School,Closed,Primary,,,,",
    )
    result = await import_gias(data, uow=UnitOfWork(engine), now=datetime.now(UTC),
                              topic_prefix=PREFIX)
    assert (result.schools, result.created, result.updated) == (3, 2, 1)
    assert result.local_authorities_created == 1
    view = (await registry.get(f"/v1/schools/{existing}", headers=admin)).json()
    assert view["name"] == "St Mary\u2019s C of E Primary" and view["phase"] == "Primary"
    assert view["webhook"]["has_secret"] and view["day_starts_at"] == "08:40"
    assert view["contacts"][0]["role"] == "dsl"
    added_view = (await registry.get(f"/v1/schools/{added}", headers=admin)).json()
    assert added_view["name"] == "Ysgol G\u00fbn"
    assert (await registry.get(f"/v1/schools/{closed}", headers=admin)).json()["status"] == "closed"
    names = await registry.get(f"/v1/local-authorities/{kept_la}", headers=admin)
    assert names.json()["name"] == "Kept Name"
    new = await registry.get(f"/v1/local-authorities/{new_code}", headers=admin)
    assert new.json() == new.json() | {"name": f"LA {new_code}", "schools": 2}


async def test_bad_gias_file_changes_nothing(engine) -> None:
    good, code = next_urn(), next_la()
    data = gias_file(f"{good},{code},Fine School,Open,Primary,4,11,,",
                     f"{next_urn()},{code},Bad Ages,Open,Primary,11,4,,")
    with pytest.raises(ImportRejected) as caught:
        await import_gias(data, uow=UnitOfWork(engine), now=datetime.now(UTC),
                              topic_prefix=PREFIX)
    assert [(p.row, p.field) for p in caught.value.problems] == [(3, "StatutoryHighAge")]
    assert await count(engine, schools, urn=good) == 0
    assert await count(engine, local_authorities, la_code=code) == 0


async def test_cli_roster_import_replaces_every_named_roll(tmp_path, engine, cli_env,
                                                           capsys) -> None:
    first, second = next_urn(), next_urn()
    for urn in (first, second):
        await register_school(engine, urn)
    path = tmp_path / "roster.csv"
    path.write_text(roster_csv(*(pupil_row(first if i % 3 else second, i) for i in range(30))))
    assert await asyncio.to_thread(run_cli, "roster", "import", str(path)) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    summary = json.loads(out[0])
    assert (summary["rows"], summary["schools"], summary["replaced"]) == (30, 2, 0)
    assert await count(engine, pupils, urn=first) == 20
    assert await count(engine, pupils, urn=second) == 10


async def test_cli_bad_roster_prints_twenty_lines_and_a_tail(tmp_path, engine, cli_env,
                                                             capsys) -> None:
    urn = next_urn()
    await register_school(engine, urn)
    path = tmp_path / "roster.csv"
    path.write_text(roster_csv(*(pupil_row(urn, i, gender="Q") for i in range(25))))
    assert await asyncio.to_thread(run_cli, "roster", "import", str(path)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == ""
    assert lines[0] == "daybreak: invalid roster: 25 problem(s); nothing was imported"
    assert lines[1] == "daybreak: row 2: gender: must be one of F, M, U, X"
    assert len(lines) == 22 and lines[-1] == "... and 5 more"
    assert "Zebedee" not in captured.err and "Quibble" not in captured.err
    assert await count(engine, pupils, urn=urn) == 0


async def test_cli_roster_naming_an_unknown_school_is_refused(tmp_path, engine, cli_env,
                                                              capsys) -> None:
    known, unknown = next_urn(), next_urn()
    await register_school(engine, known)
    path = tmp_path / "roster.csv"
    path.write_text(roster_csv(pupil_row(known, 1), pupil_row(unknown, 2),
                               pupil_row(unknown, 3)))
    assert await asyncio.to_thread(run_cli, "roster", "import", str(path)) == 2
    err = capsys.readouterr().err
    assert "daybreak: row 3: urn: no school with this URN (2 row(s))" in err
    assert await count(engine, pupils, urn=known) == 0


async def test_cli_missing_file_is_one_line_exit_1(tmp_path, cli_env, capsys) -> None:
    for command in ("roster", "schools"):
        code = await asyncio.to_thread(run_cli, command, "import", str(tmp_path / "nope.csv"))
        assert code == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"daybreak: cannot read {tmp_path / 'nope.csv'}: No such file or directory"]


async def test_cli_schools_import_reads_cp1252(tmp_path, registry, admin, cli_env, capsys) -> None:
    urn, code = next_urn(), next_la()
    path = Path(tmp_path / "edubasealldata.csv")
    path.write_bytes(gias_file(f'{urn},{code},"Caf\u00e9 Lane \u2013 Primary",Open,Primary,3,11,,'))
    assert await asyncio.to_thread(run_cli, "schools", "import", str(path)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary | {"seconds": 0} == {"schools": 1, "created": 1, "updated": 0,
                                        "local_authorities_created": 1, "seconds": 0}
    got = await registry.get(f"/v1/schools/{urn}", headers=admin)
    assert got.json()["name"] == "Caf\u00e9 Lane \u2013 Primary"


async def test_cli_bad_gias_file_exits_2(tmp_path, cli_env, capsys) -> None:
    path = tmp_path / "gias.csv"
    path.write_bytes(gias_file(f"{next_urn()},330,,Open,Primary,4,11,,"))
    assert await asyncio.to_thread(run_cli, "schools", "import", str(path)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[1] == "daybreak: row 2: EstablishmentName: required, at most 200 characters"
