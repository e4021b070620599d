"""A correction through the real services: police move a child to another school, the first
school's DSL sees the notification retracted and the second school is told."""

from __future__ import annotations

import asyncio
import copy
import random
import string
from datetime import date, timedelta
from typing import Any

import pytest

from services.common.security import Principal
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.support.api import issuer_for, new_police_client, police_token, running
from tests.support.ids import next_la, next_tag, next_urn
from tests.support.incidents import incident_body
from tests.support.registry import pupil, seed
from tests.support.tokens import bearer

pytestmark = pytest.mark.e2e


async def poll(get: Any, ready: Any, *, seconds: float = 60) -> Any:
    for _ in range(int(seconds * 5)):
        value = await get()
        if ready(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("timed out waiting")


def someone() -> tuple[str, str]:
    family = "".join(random.choices(string.ascii_lowercase, k=9)).title()
    return family, (date(2012, 1, 1) + timedelta(days=random.randint(0, 2500))).isoformat()


def dsl_of(urn: str) -> dict[str, str]:
    return bearer(Principal(subject=f"dsl-{next_tag()}", kind="user", role="dsl",
                            scopes=frozenset({"notifications:read", "notifications:ack"}),
                            school_urns=frozenset({urn})))


async def test_a_child_moved_by_a_correction_is_retracted_at_the_first_school(settings) -> None:
    la, first, second = next_la(), next_urn(), next_urn()
    (maya, maya_born), (nia, nia_born) = someone(), someone()
    await seed(settings, las=[la], school_rows=[
        {"urn": urn, "name": f"School {urn}", "la_code": la, "postcode": postcode,
         "contacts": [{"role": "dsl", "name": "D", "email": f"dsl-{urn}@school.test"}]}
        for urn, postcode in ((first, "WV1 1AA"), (second, "WV9 9ZZ"))], pupil_rows=[
        pupil(first, "", "Maya", maya, maya_born, address_line1="3 Elm Way", postcode="WV1 1AA"),
        pupil(second, "", "Nia", nia, nia_born, address_line1="8 Oak Row", postcode="WV9 9ZZ")])
    body = incident_body()
    body["children"][0].update(given_name="Maya", family_name=maya, date_of_birth=maya_born,
                               school_hint=None, address={"line1": "3 Elm Way",
                                                          "postcode": "WV1 1AA"})
    body["children"][0].pop("upn")
    corrected = copy.deepcopy(body)
    corrected["children"][0].update(given_name="Nia", family_name=nia, date_of_birth=nia_born,
                                    address={"line1": "8 Oak Row", "postcode": "WV9 9ZZ"})
    at_first, at_second = dsl_of(first), dsl_of(second)

    async with (running(build_matcher(settings)),
                running(build_notifier(NotifierSettings(**settings.model_dump()))) as notifier,
                running(build_ingest(settings, issuer=issuer_for(settings))) as ingest):
        client_id, secret = await new_police_client(settings, "WMP")
        police = {"Authorization": f"Bearer {await police_token(ingest, client_id, secret)}"}
        incident_id = (await ingest.post("/v1/incidents", json=body,
                                         headers=police)).json()["incident_id"]
        listed = await poll(lambda: notifier.get("/v1/notifications", headers=at_first),
                            lambda r: r.json()["items"])
        notification_id = listed.json()["items"][0]["id"]
        read = await notifier.get(f"/v1/notifications/{notification_id}", headers=at_first)
        assert read.json()["children"][0]["family_name"] == maya

        answer = await ingest.put(f"/v1/incidents/{incident_id}", json=corrected,
                                  headers=police)
        assert (answer.status_code, answer.json()["version"]) == (202, 2)

        told = await poll(lambda: notifier.get("/v1/notifications", headers=at_second),
                          lambda r: r.json()["items"])
        [theirs] = told.json()["items"]
        shown = await notifier.get(f"/v1/notifications/{theirs['id']}", headers=at_second)
        assert shown.json()["children"][0]["family_name"] == nia
        assert shown.json()["version"] == 2
        mine = await poll(lambda: notifier.get("/v1/notifications", headers=at_first),
                          lambda r: r.json()["items"][0]["state"] in ("retracted", "cancelled"))
        assert mine.json()["items"][0]["id"] == notification_id
        gone = await notifier.get(f"/v1/notifications/{notification_id}", headers=at_first)
        assert gone.status_code == 410
        assert maya not in gone.text and nia not in gone.text
