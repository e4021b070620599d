"""Child data sealed at rest: the notifier's children and incident summaries and the matcher's
review content are stored sealed, bound to their row, read clear by whoever records the
disclosure first, read as they are when written before sealing, and unreadable once
retention shreds their month's data key."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.cli import reseal_all
from services.common.crypto import KeyShredded, SealError
from services.common.db import service_engine
from services.common.models import outbox
from services.common.problems import Problem
from services.common.sealed_columns import SEALED, aad
from services.common.sealing import ChildSealing, with_sealing
from services.common.settings import Settings
from services.matcher.content import opened_review, refresh_seals, sealed_review
from services.matcher.models import reviews
from services.matcher.retention import purge_reviews
from services.notifier.actions import ActionIn, notification_actions
from services.notifier.api import AcknowledgeIn, acknowledge_notification, view_notification
from services.notifier.content import CHILDREN, opened_children, opened_notification
from services.notifier.context import NotifierContext
from services.notifier.handlers import NotifierDeps, on_child_matched
from services.notifier.models import notification_children, notifications
from services.notifier.record import export_record
from tests.support.clock import Clock
from tests.support.ids import next_la
from tests.support.keys import Keystore
from tests.support.notifier import MATCHED_AT, add_school, matched
from tests.support.tokens import person

pytestmark = pytest.mark.integration
SECRETS = (b"Okafor", b"Secret voice", b"Secret summary", b"2015-01-09")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The notifier's own role, carrying the session keystore."""
    engine = service_engine(settings, "notifier", pool_size=2)
    yield engine
    await engine.dispose()


def deps_of(engine: AsyncEngine, settings: Settings, clock: Clock) -> NotifierDeps:
    return NotifierDeps(engine=engine, clock=clock,
                        child_key_secret=settings.child_key_secret.get_secret_value())


def ctx_of(engine: AsyncEngine, settings: Settings, clock: Clock) -> NotifierContext:
    return NotifierContext(settings=settings, engine=engine, clock=clock,
                           deps=deps_of(engine, settings, clock), registry=CollectorRegistry())


async def stored(engine: AsyncEngine, incident_id: uuid.UUID) -> tuple[Any, list[Any]]:
    """The incident's one notification row and its children's rows, as stored."""
    async with engine.connect() as conn:
        [row] = (await conn.execute(select(notifications).where(
            notifications.c.incident_id == incident_id))).all()
        kids = (await conn.execute(select(notification_children).where(
            notification_children.c.notification_id == row.id))).all()
    return row, list(kids)


async def notified(engine: AsyncEngine, settings: Settings, clock: Clock) -> tuple[Any, Any]:
    """A matched child's notification at a new school: its row and school."""
    school = await add_school(engine)
    incident_id = uuid.uuid4()
    await on_child_matched(matched(incident_id, school, "Zara", matched_at=clock.now),
                           deps=deps_of(engine, settings, clock))
    return incident_id, school


async def test_a_childs_names_and_the_summary_are_sealed_at_rest_and_shown_after_the_disclosure(
    engine: AsyncEngine, settings: Settings,
) -> None:
    clock = Clock(MATCHED_AT)
    incident_id, school = await notified(engine, settings, clock)
    row, [kid] = await stored(engine, incident_id)
    raw = json.dumps([row.incident, kid.child]).encode()
    assert not [s for s in SECRETS if s in raw]
    assert set(kid.child) == {SEALED} and kid.child[SEALED].startswith("dk1.2026-11.")
    assert row.incident["force_code"] == "WMP" and row.incident["incident_type"] == (
        "domestic_abuse") and "summary" not in row.incident  # clear for SQL and routing
    shown = await view_notification(ctx_of(engine, settings, clock), row.id,
                                    person("dsl", schools=[school.urn]), channel="api")
    assert shown["children"][0]["given_name"] == "Zara"
    assert shown["children"][0]["family_name"] == "Okafor"
    async with engine.connect() as conn:
        staged = (await conn.execute(select(outbox.c.value).where(
            outbox.c.source == settings.topic("notifier"),
            outbox.c.topic.like("%disclosures.v1")))).scalars().all()
    assert any(str(row.id).encode() in v and b"notification.view" in v for v in staged)


async def test_rows_written_before_sealing_are_read_as_they_are(
    engine: AsyncEngine, settings: Settings,
) -> None:
    clock = Clock(MATCHED_AT)
    incident_id, school = await notified(engine, settings, clock)
    row, [kid] = await stored(engine, incident_id)
    async with engine.begin() as conn:  # as a row stored before this release
        [opened] = opened_children(conn, [kid._mapping])
        await conn.execute(update(notification_children).where(
            notification_children.c.notification_id == row.id).values(child=opened["child"]))
    shown = await view_notification(ctx_of(engine, settings, clock), row.id,
                                    person("dsl", schools=[school.urn]), channel="api")
    assert [c["given_name"] for c in shown["children"]] == ["Zara"]


async def test_a_sealed_child_copied_to_another_row_does_not_open(
    engine: AsyncEngine, settings: Settings,
) -> None:
    clock = Clock(MATCHED_AT)
    first, _ = await notified(engine, settings, clock)
    second, _ = await notified(engine, settings, clock)
    _, [kid] = await stored(engine, first)
    other, [theirs] = await stored(engine, second)
    moved = dict(theirs._mapping) | {"child": kid.child}
    with pytest.raises(SealError):
        opened_children(engine, [moved])
    assert aad(CHILDREN, other.id, theirs.child_id, column="child") != aad(
        CHILDREN, kid.notification_id, kid.child_id, column="child")


async def test_a_notification_child_past_its_period_cannot_be_opened_after_shredding(
    settings: Settings, keystore: Keystore,
) -> None:
    own = service_engine(settings, "notifier", pool_size=2)
    engine = with_sealing(own, ChildSealing(None, keyring=keystore.keyring()))
    clock = Clock(datetime(2026, 1, 12, 20, 0, tzinfo=UTC))
    try:
        incident_id, school = await notified(engine, settings, clock)
        row, [kid] = await stored(engine, incident_id)
        token = kid.child[SEALED]
        assert token.startswith("dk1.2026-01.") and opened_children(engine, [kid._mapping])
        assert keystore.keyring().shred_through("2026-01") == ["2026-01"]
        fresh = with_sealing(own, ChildSealing(None, keyring=keystore.keyring()))
        with pytest.raises(KeyShredded):
            keystore.keyring().open(token, aad=aad(CHILDREN, row.id, kid.child_id,
                                                   column="child"))
        with pytest.raises(Problem) as gone:
            opened_children(fresh, [kid._mapping])
        assert gone.value.status == 410
        with pytest.raises(Problem) as shown:
            await view_notification(ctx_of(fresh, settings, clock),
                                    row.id, person("dsl", schools=[school.urn]),
                                    channel="api")
        assert shown.value.status == 410
    finally:
        async with own.begin() as conn:
            await conn.execute(delete(notifications).where(
                notifications.c.incident_id == incident_id))
        await own.dispose()


async def test_a_reviews_content_is_sealed_bound_to_it_and_retention_still_erases_it(
    settings: Settings,
) -> None:
    engine = service_engine(settings, "matcher", pool_size=2)
    review_id, incident_id, child_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    child = {"given_name": "Zara", "family_name": "Okafor", "date_of_birth": "2015-01-09"}
    incident = {"incident_id": str(incident_id), "force_code": "WMP",
                "incident_type": "domestic_abuse", "occurred_at": "2026-11-22T18:00:00+00:00",
                "summary": "Secret summary", "disclosure_fields": ["summary"]}
    resolution = {"status": "matched", "urns": ["100001"], "outcome": None,
                  "reason": "Okafor's mother confirmed the school"}
    candidates = [child | {"urn": "100001", "upn": "A123456789012"}]
    created = MATCHED_AT - timedelta(days=200)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(reviews).values(
                review_id=review_id, incident_id=incident_id, child_index=0, child_id=child_id,
                la_code=next_la(), status="resolved", created_at=created, resolved_at=created,
                **sealed_review(conn, review_id, at=created, child=child, incident=incident,
                                candidates=candidates, resolution=resolution)))
            row = (await conn.execute(select(reviews).where(
                reviews.c.review_id == review_id))).one()
            raw = json.dumps([row.child, row.incident, row.candidates, row.resolution]).encode()
            assert not [s for s in SECRETS if s in raw]
            assert row.resolution["status"] == "matched" and row.incident["force_code"] == "WMP"
            opened = opened_review(conn, row)
            assert (opened.child, opened.incident, opened.candidates, opened.resolution) == (
                child, incident, candidates, resolution)
            elsewhere = type("Row", (), {"_mapping": dict(row._mapping)
                                         | {"review_id": uuid.uuid4()}})()
            with pytest.raises(SealError):
                opened_review(conn, elsewhere)
            cutoff = created + timedelta(seconds=1)
            assert await purge_reviews(conn, cutoff=cutoff, now=MATCHED_AT) >= 1
            purged = (await conn.execute(select(reviews).where(
                reviews.c.review_id == review_id))).one()
        assert purged.child == {} and purged.candidates == []
        assert purged.resolution == {"status": "matched", "urns": ["100001"], "outcome": None}
        assert SEALED not in purged.incident and purged.incident["force_code"] == "WMP"
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(reviews).where(reviews.c.review_id == review_id))
        await engine.dispose()


async def test_reseal_seals_the_rows_stored_clear_before_sealing(
    engine: AsyncEngine, settings: Settings,
) -> None:
    clock = Clock(MATCHED_AT)
    incident_id, _ = await notified(engine, settings, clock)
    row, [kid] = await stored(engine, incident_id)
    async with engine.begin() as conn:  # as stored before this release
        [clear_kid] = opened_children(conn, [kid._mapping])
        clear_incident = opened_notification(conn, row._mapping)["incident"]
        await conn.execute(update(notification_children).where(
            notification_children.c.notification_id == row.id).values(child=clear_kid["child"]))
        await conn.execute(update(notifications).where(notifications.c.id == row.id).values(
            incident=clear_incident))
    matcher = service_engine(settings, "matcher", pool_size=1)
    review_id = uuid.uuid4()
    child = {"given_name": "Zara", "family_name": "Okafor", "date_of_birth": "2015-01-09"}
    try:
        async with matcher.begin() as conn:
            await conn.execute(insert(reviews).values(
                review_id=review_id, incident_id=incident_id, child_index=0,
                child_id=uuid.uuid4(), la_code=next_la(), created_at=MATCHED_AT, child=child,
                incident=clear_incident, candidates=[child | {"urn": "100001"}],
                resolution={"handover_reason": "Okafor family moved"}))
        done = await reseal_all(settings)
        assert done["notifier"] >= 2 and done["matcher"] >= 1
        assert (await reseal_all(settings)) == {"notifier": 0, "matcher": 0, "roll": 0}  # once
        row, [kid] = await stored(engine, incident_id)
        assert set(kid.child) == {SEALED} and "summary" not in row.incident
        assert opened_children(engine, [kid._mapping])[0]["child"] == clear_kid["child"]
        async with matcher.connect() as conn:
            review = (await conn.execute(select(reviews).where(
                reviews.c.review_id == review_id))).one()
            raw = json.dumps([review.child, review.incident, review.candidates,
                              review.resolution]).encode()
            assert not [s for s in SECRETS if s in raw] and b"moved" not in raw
            assert opened_review(conn, review).resolution == {
                "handover_reason": "Okafor family moved"}
    finally:
        async with matcher.begin() as conn:
            await conn.execute(delete(reviews).where(reviews.c.review_id == review_id))
        await matcher.dispose()


async def test_what_a_school_wrote_is_sealed_and_read_back_in_its_record(
    engine: AsyncEngine, settings: Settings,
) -> None:
    clock = Clock(MATCHED_AT)
    incident_id, school = await notified(engine, settings, clock)
    row, _ = await stored(engine, incident_id)
    ctx, dsl = ctx_of(engine, settings, clock), person("dsl", schools=[school.urn])
    clock.now = MATCHED_AT + timedelta(hours=13)
    body = AcknowledgeIn(action_taken="Spoke to Zara Okafor's form tutor", actions=[ActionIn(
        type="support_in_school", on=clock.now.date(), note="Okafor family: check in daily")])
    await acknowledge_notification(ctx, row.id, body, dsl, channel="api")
    async with engine.connect() as conn:
        taken = (await conn.execute(select(notifications.c.action_taken).where(
            notifications.c.id == row.id))).scalar_one()
        note = (await conn.execute(select(notification_actions.c.note).where(
            notification_actions.c.notification_id == row.id))).scalar_one()
    assert taken.startswith("dk1.") and note.startswith("dk1.")
    assert "Okafor" not in taken + note
    entry = await export_record(ctx, row.id, dsl, channel="api")
    described = json.dumps(entry)
    assert "Zara Okafor's form tutor" in described and "check in daily" in described


async def test_a_review_kept_past_its_months_shredding_is_sealed_again_and_still_opens(
    settings: Settings, keystore: Keystore,
) -> None:
    """An open review is never erased, and one resolved late in the retention period is kept
    for it: the retention owner shreds the month each was sealed under once the whole month
    is past retention, so the matcher's retention seals them again first. One resolved long
    ago is not kept, so it is not sealed again."""
    own = service_engine(settings, "matcher", pool_size=2)
    engine = with_sealing(own, ChildSealing(None, keyring=keystore.keyring()))
    created = datetime(2019, 1, 10, 9, 0, tzinfo=UTC)  # before every other test's rows
    now = datetime(2019, 5, 6, 9, 0, tzinfo=UTC)
    child = {"given_name": "Zara", "family_name": "Okafor", "date_of_birth": "2015-01-09"}
    incident = {"incident_id": str(uuid.uuid4()), "force_code": "WMP",
                "incident_type": "domestic_abuse", "occurred_at": "2019-01-09T18:00:00+00:00",
                "summary": "Secret summary", "disclosure_fields": ["summary"]}
    resolved = {"status": "matched", "urns": ["100001"], "outcome": None, "reason": "seen"}
    rows = {"open": (uuid.uuid4(), "open", None, None),
            "late": (uuid.uuid4(), "resolved", now - timedelta(days=10), resolved),
            "long ago": (uuid.uuid4(), "resolved", created, resolved)}
    try:
        async with engine.begin() as conn:
            for review_id, status, resolved_at, resolution in rows.values():
                await conn.execute(insert(reviews).values(
                    review_id=review_id, incident_id=uuid.uuid4(), child_index=0,
                    child_id=uuid.uuid4(), la_code=next_la(), status=status,
                    created_at=created, resolved_at=resolved_at,
                    **sealed_review(conn, review_id, at=created, child=child, incident=incident,
                                    candidates=[child | {"urn": "100001"}],
                                    resolution=resolution)))
        assert await refresh_seals(engine, now=now, days=90) == 2
        assert keystore.keyring().shred_through("2019-01") == ["2019-01"]
        fresh = with_sealing(own, ChildSealing(None, keyring=keystore.keyring()))
        async with fresh.begin() as conn:
            stored = {name: (await conn.execute(select(reviews).where(
                reviews.c.review_id == ids[0]))).one() for name, ids in rows.items()}
            for name in ("open", "late"):
                assert stored[name].child[SEALED].startswith("dk1.2019-05.")
                opened = opened_review(conn, stored[name])
                assert (opened.child, opened.incident["summary"]) == (child, "Secret summary")
            assert stored["long ago"].child[SEALED].startswith("dk1.2019-01.")
            with pytest.raises(Problem) as gone:
                opened_review(conn, stored["long ago"])
            assert gone.value.status == 410
    finally:
        async with own.begin() as conn:
            await conn.execute(delete(reviews).where(
                reviews.c.review_id.in_([ids[0] for ids in rows.values()])))
        await own.dispose()
