"""The prior by area through the registry and the consumer: an LA's police force says which
schools are near a report, and the decision says whether its pupil was."""

from __future__ import annotations

import random
import string
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from schemas.envelope import wrap
from schemas.incidents import IncidentIn, IncidentReceived
from services.common.db import UnitOfWork, service_engine
from services.matcher.domain import IN_AREA, OUT_OF_AREA, PRIOR
from services.matcher.handlers import MatcherDeps, on_incident_received
from services.matcher.index import RosterCache
from services.matcher.models import local_authorities, match_decisions
from tests.support.ids import next_force, next_la, next_urn
from tests.support.incidents import incident_body
from tests.support.registry import la_body, pupil, seed

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


async def test_an_la_s_police_force_is_kept_until_changed(registry, admin) -> None:
    code, force = next_la(), next_force("AR")
    created = await registry.put(f"/v1/local-authorities/{code}",
                                 json=la_body() | {"force_code": force.lower()}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["force_code"] == force
    kept = await registry.put(f"/v1/local-authorities/{code}", json=la_body(), headers=admin)
    assert kept.json()["force_code"] == force
    refused = await registry.put(f"/v1/local-authorities/{code}",
                                 json=la_body() | {"force_code": "wm p"}, headers=admin)
    assert refused.status_code == 422


@pytest.fixture
async def deps(settings):
    engine = service_engine(settings, "matcher", pool_size=2)
    yield MatcherDeps(engine=engine, roster=RosterCache(engine), topic_prefix=settings.topic_prefix,
                      clock=lambda: NOW, published=lambda: None)
    await engine.dispose()


async def test_the_consumer_gives_the_reporting_force_s_area_its_prior(settings, deps) -> None:
    la, school, force = next_la(), next_urn(), next_force("AR")
    far_la, far_school = next_la(), next_urn()  # another force's default LA, far away
    family = "".join(random.choices(string.ascii_lowercase, k=9)).title()
    born = date(2012, 1, 1) + timedelta(days=random.randint(0, 2500))
    await seed(settings, las=[la, far_la], school_rows=[
        {"urn": school, "name": "Test School", "la_code": la},
        {"urn": far_school, "name": "Far School", "la_code": far_la}],
        pupil_rows=[pupil(school, "", "Zara", family, born.isoformat(),
                          address_line1="7 Ash Grove", postcode="WV1 1AA")])
    async with UnitOfWork(deps.engine) as uow:
        await uow.conn.execute(update(local_authorities).where(local_authorities.c.la_code == la)
                               .values(force_code=force, updated_at=datetime.now(UTC)))
        await uow.commit()
    priors = {}
    for reporter, default_la in ((force, None), (next_force("AR"), far_la)):
        body = incident_body(reporter)
        body["children"][0].update(given_name="Zara", family_name=family,
                                   date_of_birth=born.isoformat(), school_hint=None,
                                   address={"line1": "7 Ash Grove", "postcode": "WV1 1AA"})
        body["children"][0].pop("upn")
        incident_id = uuid.uuid4()
        event = IncidentReceived(incident_id=incident_id, received_at=NOW,
                                 incident=IncidentIn.model_validate(body),
                                 default_la_code=default_la)
        await on_incident_received(wrap(event), deps=deps)
        async with deps.engine.connect() as conn:
            row = (await conn.execute(select(match_decisions).where(
                match_decisions.c.incident_id == incident_id))).one()
        assert (row.status, row.urns) == ("matched", [school])
        priors[reporter] = row.agreements[PRIOR]
    assert list(priors.values()) == [IN_AREA, OUT_OF_AREA]
