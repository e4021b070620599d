"""`daybreak doctor`: one line per configuration problem that would leave a child with nobody
told, exit 1 when there is any; each test on a database of its own, so "none" means none."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert, update

from services import demo
from services.common.db import standalone_uow
from services.common.settings import Settings
from services.doctor import configuration_problems, forces_problems
from services.identity.models import api_clients
from services.ingest.api import ForceIn
from services.ingest.main import build_app as build_ingest
from services.ingest.models import forces
from services.matcher.main import build_app as build_matcher
from services.matcher.models import local_authorities
from services.matcher.readiness import default_la_problems, registry_problems
from services.matcher.registry_models import SchoolIn
from tests.support.api import issuer_for, new_police_client, running
from tests.support.db import create_test_database, drop_test_database, service_urls
from tests.support.incidents import register_force
from tests.support.keys import Keystore
from tests.support.registry import run_cli
from tests.support.tokens import bearer, person, trusting

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
READY_LINE = "ready: no configuration problem would leave a child with nobody told\n"
LA_CONTACTS = [{"role": role, "name": role.title(), "email": f"{role}@la.test"}
               for role in ("safeguarding", "review", "duty_manager")]
Capsys = pytest.CaptureFixture[str]


@pytest.fixture
async def own(kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch,
              session_keystore: Keystore) -> AsyncIterator[Settings]:
    """Settings on a database of this test's own; the CLI's environment points at it too."""
    urls = await create_test_database()
    for name, url in service_urls(urls).items():
        monkeypatch.setenv(f"DAYBREAK_{name.upper()}", url)
    yield Settings(env="test", **service_urls(urls), kafka_bootstrap=kafka_bootstrap,
                   topic_prefix=topic_prefix, child_key_secret=secrets.token_hex(32),
                   cookie_secure=False, db_pool_size=2, kafka_partitions=1, **trusting(),
                   **session_keystore.settings(), shred_expired_keys=False)
    await drop_test_database(urls)


async def add_la(settings: Settings, la: str, contacts: list[dict[str, str]]) -> None:
    async with standalone_uow(settings, "matcher") as uow:
        await uow.conn.execute(insert(local_authorities).values(
            la_code=la, name=f"LA {la}", contacts=contacts))
        await uow.commit()


async def flawed_world(settings: Settings) -> None:
    """READY is fine; NOLA names no default LA; LOST's is not registered; GHOST has a police
    client and no profile; GONE's only client is disabled (it reports nothing)."""
    await add_la(settings, "LA1", LA_CONTACTS)
    await register_force(settings, "READY", "LA1")
    await register_force(settings, "LOST", "NOWHERE")
    async with standalone_uow(settings, "ingest") as uow:
        await uow.conn.execute(insert(forces).values(force_code="NOLA", name="No LA Police"))
        await uow.commit()
    for force in ("READY", "GHOST", "GONE"):
        await new_police_client(settings, force, default_la=None)
    async with standalone_uow(settings, "identity") as uow:
        await uow.conn.execute(update(api_clients).where(api_clients.c.force_code == "GONE")
                               .values(disabled_at=NOW))
        await uow.commit()


FLAWS = [("force:GHOST", "force_no_profile"), ("force:LOST", "force_default_la_unknown"),
         ("force:NOLA", "force_no_default_la")]


async def test_the_force_checks_and_the_cross_check_name_each_flaw(own: Settings) -> None:
    await flawed_world(own)
    problems, defaults = await forces_problems(own, now=NOW)
    assert defaults == {"READY": "LA1", "LOST": "NOWHERE"}
    async with standalone_uow(own, "matcher") as uow:
        problems += await default_la_problems(uow.conn, defaults)
    assert sorted((p.subject, p.code) for p in problems) == FLAWS
    lines = {p.subject: p.line() for p in problems}
    assert lines["force:LOST"] == (
        "force:LOST: default local authority NOWHERE is not in the registry: register it "
        "(PUT /v1/local-authorities/NOWHERE) or name another [force_default_la_unknown]")
    assert "/v1/forces/NOLA" in lines["force:NOLA"]


def doctor(capsys: Capsys) -> tuple[int, str, str]:
    """`daybreak doctor` as an operator runs it: exit code, stdout, stderr."""
    code = run_cli("doctor")
    out, err = capsys.readouterr()
    return code, out, err


async def test_doctor_prints_a_line_per_problem_and_exits_1(own: Settings,
                                                             capsys: Capsys) -> None:
    await flawed_world(own)
    code, out, err = await asyncio.to_thread(doctor, capsys)
    assert code == 1
    lines = out.splitlines()
    assert all(line.endswith("]") and ": " in line for line in lines), lines
    named = [(line.split(": ", 1)[0], line.rsplit("[", 1)[1][:-1]) for line in lines]
    assert [n for n in named if n[0].startswith("force:")] == FLAWS
    assert err == f"daybreak: {len(lines)} configuration problem(s) would leave a child with " \
                  "nobody told\n"


async def test_doctor_is_quiet_and_exits_0_when_everyone_is_reachable(
    own: Settings, capsys: Capsys
) -> None:
    await add_la(own, "LA1", LA_CONTACTS)
    await new_police_client(own, "READY", default_la="LA1")
    assert await asyncio.to_thread(doctor, capsys) == (0, READY_LINE, "")


# `make up` runs the doctor after the demo, on whatever day it is: the demo's term dates (three
# academic years from September 2026) keep it clean until they run out
DEMO_CLEAN_ON = [datetime(2026, 12, 1, 7, 30, tzinfo=UTC), datetime(2026, 12, 21, 9, tzinfo=UTC),
                 datetime(2027, 6, 1, 7, tzinfo=UTC), datetime(2027, 8, 12, 20, tzinfo=UTC),
                 datetime(2028, 6, 1, 7, tzinfo=UTC), datetime(2029, 5, 31, 12, tzinfo=UTC)]


async def test_the_demos_configuration_leaves_nobody_unready(own: Settings,
                                                             capsys: Capsys) -> None:
    """What `make up` checks after `daybreak demo`: the demo's LA, its term dates, schools and
    force as it registers them through the admin APIs, and its police client."""
    async with running(build_matcher(own)) as matcher, \
            running(build_ingest(own, issuer=issuer_for(own))) as ingest:
        await demo.register(matcher, ingest, bearer(person("admin")))
    await new_police_client(own, demo.FORCE, default_la=None)
    printed = capsys.readouterr().out
    # the coming Christmas Eve: which one depends on the real date the demo runs on
    assert "a child matched on Christmas Eve at 8pm reaches the holiday cover and the LA on " \
        "Tuesday 29 December" in printed or date.today() > date(2026, 12, 24)
    assert "and the DSL on the first day back, " in printed
    for now in DEMO_CLEAN_ON:
        assert await configuration_problems(own, now=now, registry_problems=registry_problems
                                            ) == [], now
    run_out = await configuration_problems(own, now=datetime(2029, 6, 1, 7, tzinfo=UTC),
                                           registry_problems=registry_problems)
    assert [(p.subject, p.code) for p in run_out] == [
        (f"la:{demo.LA}", "la_no_term_dates_next_year")]


def test_the_demo_registers_every_contact_the_doctor_asks_for() -> None:
    """Read without the matcher's rules: the LA's three contacts, each school's DSL, deputy and
    holiday cover, the force's default LA (the demo's own), each body as its admin API takes
    it."""
    assert {c["role"] for c in demo.la_body()["contacts"]} == {
        "safeguarding", "review", "duty_manager"}
    for urn, name, postcode in demo.SCHOOLS:
        school = SchoolIn.model_validate(demo.school_body(urn, name, postcode))
        assert school.participates and school.la_code == demo.LA
        assert {c.role for c in school.contacts} == {"dsl", "deputy_dsl", "holiday_cover"}
    force = ForceIn.model_validate(demo.force_body())
    assert force.default_la_code == demo.LA


async def test_a_database_away_is_one_line_and_a_nonzero_exit(
    monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    for service in ("ingest", "matcher", "identity"):
        monkeypatch.setenv(f"DAYBREAK_{service.upper()}_DATABASE_URL",
                           "postgresql+asyncpg://nobody:x@127.0.0.1:1/none")
    code, out, err = await asyncio.to_thread(doctor, capsys)
    assert code != 0 and out == ""
    assert err.startswith("daybreak: database or broker error (") and err.count("\n") == 1
