"""Tenants stay apart: forces, schools and LAs see, change and list only their own objects."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.send import leaks
from tests.security.world import World

pytestmark = pytest.mark.integration


def _ids(listing: dict[str, Any] | list[dict[str, Any]], key: str) -> set[str]:
    items = listing["items"] if isinstance(listing, dict) else listing
    return {str(item[key]) for item in items}


async def test_a_force_cannot_see_or_withdraw_another_forces_incident(world: World) -> None:
    ingest, theirs = world.clients["ingest"], world.params["incident_b"]
    wmp, gmp = world.bearer("police_a"), world.bearer("police_b")
    read = await ingest.get(f"/v1/incidents/{theirs}", headers=wmp)
    withdraw = await ingest.post(f"/v1/incidents/{theirs}/withdraw", headers=wmp,
                                 json={"reason": "not ours, but let us try"})
    for resp in (read, withdraw):
        assert resp.status_code == 404 and not leaks(resp, world.marks("incident_b"))
        assert theirs not in resp.text
    still = await ingest.get(f"/v1/incidents/{theirs}", headers=gmp)
    assert still.status_code == 200 and still.json()["status"] == "accepted"


async def test_a_dsl_lists_reads_and_acknowledges_only_their_own_school(world: World) -> None:
    notifier, p = world.clients["notifier"], world.params
    mine, theirs = world.bearer("dsl_x"), world.bearer("dsl_y")
    listed = await notifier.get("/v1/notifications", headers=theirs)
    assert listed.status_code == 200
    assert _ids(listed.json(), "id") >= {p["notification_y"]}
    assert not _ids(listed.json(), "id") & {p["notification_id"], p["notification_la1"]}
    assert not leaks(listed, world.marks())  # a listing carries no child data, even one's own
    url = f"/v1/notifications/{p['notification_id']}"
    for resp in (await notifier.get(url, headers=theirs),
                 await notifier.post(f"{url}/acknowledge", headers=theirs, json={})):
        assert resp.status_code == 404 and not leaks(resp, world.marks("notification_x"))
    [own] = [i for i in (await notifier.get("/v1/notifications", headers=mine)).json()["items"]
             if i["id"] == p["notification_id"]]
    assert own["state"] != "acknowledged" and own["acknowledged_at"] is None


async def test_an_la_officer_works_only_their_own_queue_and_notifications(world: World) -> None:
    matcher, notifier, p = world.clients["matcher"], world.clients["notifier"], world.params
    la_1, la_2 = world.bearer("la_1"), world.bearer("la_2")
    queue = (await matcher.get("/v1/reviews", headers=la_1)).json()
    assert p["review_id"] in _ids(queue, "review_id")
    assert p["review_2"] not in _ids(queue, "review_id")
    url = f"/v1/reviews/{p['review_2']}"
    for resp in (await matcher.get(url, headers=la_1),
                 await matcher.post(f"{url}/resolve", headers=la_1,
                                    json={"outcome": "not_on_roll"})):
        assert resp.status_code == 404 and not leaks(resp, world.marks("review_2"))
    assert p["review_2"] in _ids((await matcher.get("/v1/reviews", headers=la_2)).json(),
                                 "review_id")
    listed = (await notifier.get("/v1/notifications", headers=la_1)).json()
    assert p["notification_la1"] in _ids(listed, "id")
    assert not _ids(listed, "id") & {p["notification_la2"], p["notification_id"]}
    other_la = await notifier.get(f"/v1/notifications/{p['notification_la2']}", headers=la_1)
    assert other_la.status_code == 404
    assert not leaks(other_la, world.marks("notification_la2"))


async def test_an_admin_never_sees_notification_content(world: World) -> None:
    notifier, admin = world.clients["notifier"], world.bearer("admin")
    for path in ("/v1/notifications", f"/v1/notifications/{world.params['notification_id']}"):
        resp = await notifier.get(path, headers=admin)
        assert resp.status_code == 403 and not leaks(resp, world.marks())
    # what an admin may read holds no child either
    for service, path in (("notifier", "/v1/deliveries/dead"), ("matcher", "/v1/schools/{urn}"),
                          ("matcher", "/v1/local-authorities/{la_code}"),
                          ("ingest", "/v1/forces/{force_code}")):
        resp = await world.clients[service].get(path.format(**world.params), headers=admin)
        assert resp.status_code == 200 and not leaks(resp, world.marks()), path


async def test_an_auditor_finds_a_child_by_pseudonym_only(world: World) -> None:
    audit, auditor, p = world.clients["audit"], world.bearer("auditor"), world.params
    found = await audit.post("/v1/audit/subject-access", headers=auditor, json={
        "given_name": p["given"], "family_name": p["family"], "date_of_birth": p["born"]})
    assert found.status_code == 200 and found.json()["child_key"]
    assert not leaks(found, world.marks())
    for path in ("/v1/audit/events?limit=1000", "/v1/audit/events.csv"):
        resp = await audit.get(path, headers=auditor)
        assert resp.status_code == 200 and not leaks(resp, world.marks()), path
