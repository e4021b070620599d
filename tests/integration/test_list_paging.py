"""`GET /v1/reviews` and `GET /v1/notifications` page: `limit` (100, at most 500) and a cursor."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from services.common.db import standalone_uow
from services.common.paging import encode_cursor
from services.common.settings import Settings
from services.matcher.main import build_app as build_matcher
from services.matcher.models import reviews
from services.notifier.main import build_app as build_notifier
from services.notifier.models import notifications
from services.notifier.settings import NotifierSettings
from tests.support.ids import next_la, next_urn
from tests.support.tokens import bearer, person

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CHILD = {"given_name": "Pagella", "family_name": "Cursorwood", "date_of_birth": "2016-03-02"}


async def _client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        yield client
    await app.state.ctx.engine.dispose()


@pytest.fixture
async def matcher(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(build_matcher(settings)):
        yield client


@pytest.fixture
async def notifier(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(build_notifier(NotifierSettings(**settings.model_dump()))):
        yield client


async def _add_reviews(settings: Settings, la: str, deadlines: list[datetime | None]) -> None:
    async with standalone_uow(settings, "matcher") as uow:
        await uow.conn.execute(insert(reviews), [{
            "review_id": uuid.uuid4(), "incident_id": uuid.uuid4(), "child_index": 0,
            "child_id": uuid.uuid4(), "la_code": la, "status": "open", "child": CHILD,
            "incident": {"summary": "test"}, "candidates": [], "deadline_at": deadline,
            # ties on both sort columns, so only the id keeps the order stable
            "created_at": T0 - timedelta(hours=i % 2)} for i, deadline in enumerate(deadlines)])
        await uow.commit()


async def _walk(client: httpx.AsyncClient, path: str, headers: dict[str, str], limit: int,
                page_of: Any) -> tuple[list[Any], int]:
    """Every item, following the cursors; and how many pages it took."""
    items: list[Any] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        resp = await client.get(path, params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        page, cursor = page_of(resp)
        assert len(page) <= limit
        items += page
        pages += 1
        if cursor is None:
            return items, pages


def _reviews_page(resp: httpx.Response) -> tuple[list[Any], str | None]:
    return resp.json(), resp.headers.get("x-next-cursor")


def _notifications_page(resp: httpx.Response) -> tuple[list[Any], str | None]:
    body = resp.json()
    return body["items"], body["next_cursor"]


async def test_the_review_queue_pages_in_a_stable_order_and_keeps_its_shape(
    settings: Settings, matcher: httpx.AsyncClient
) -> None:
    la = next_la()
    deadlines: list[datetime | None] = [None, None, None, T0, T0, T0, T0 + timedelta(hours=1),
                                        T0 - timedelta(hours=1), None, T0]
    await _add_reviews(settings, la, deadlines)
    officer = bearer(person("la_officer", las=[la]))
    whole = (await matcher.get("/v1/reviews", headers=officer))
    assert whole.status_code == 200 and "x-next-cursor" not in whole.headers
    assert len(whole.json()) == len(deadlines)
    assert {"review_id", "deadline_at", "minutes_left", "candidates"} <= set(whole.json()[0])
    for limit in (1, 3, 4):
        walked, pages = await _walk(matcher, "/v1/reviews", officer, limit, _reviews_page)
        assert walked == whole.json(), limit  # the same rows in the same order, none twice
        assert pages == -(-len(deadlines) // limit)
    first = await matcher.get("/v1/reviews", params={"limit": "3"}, headers=officer)
    cursor = first.headers["x-next-cursor"]
    assert first.headers["link"] == f'</v1/reviews?limit=3&cursor={cursor}>; rel="next"'
    other = bearer(person("la_officer", las=[next_la()]))  # a cursor shows only one's own
    assert (await matcher.get("/v1/reviews", params={"cursor": cursor},
                              headers=other)).json() == []


async def test_the_review_queue_answers_100_by_default_and_at_most_500(
    settings: Settings, matcher: httpx.AsyncClient
) -> None:
    la = next_la()
    await _add_reviews(settings, la, [T0 + timedelta(minutes=i) for i in range(101)])
    officer = bearer(person("la_officer", las=[la]))
    page = await matcher.get("/v1/reviews", headers=officer)
    assert len(page.json()) == 100 and page.headers["x-next-cursor"]
    naive = encode_cursor(None, "2026-11-02T09:00:00", str(uuid.uuid4()))  # no offset
    for bad in ({"limit": "501"}, {"limit": "0"}, {"cursor": "bm90LWEtY3Vyc29y"},
                {"cursor": "e30"}, {"cursor": "!!"}, {"cursor": naive},
                {"cursor": encode_cursor(None, None, None)}):
        resp = await matcher.get("/v1/reviews", params=bad, headers=officer)
        assert resp.status_code == 422, bad
        assert resp.headers["content-type"].startswith("application/problem+json")


async def _add_notifications(settings: Settings, urn: str, la: str, count: int) -> None:
    rows = []
    for i in range(count):
        incident_id = uuid.uuid4()
        rows.append({
            "id": uuid.uuid4(), "incident_id": incident_id, "school_urn": urn, "la_code": la,
            "recipient_key": f"school:{urn}", "recipient_role": "dsl", "state": "sent",
            "incident": {"incident_id": str(incident_id), "force_code": "WMP",
                         "incident_type": "domestic_abuse", "summary": "test"},
            "push_at": T0, "created_at": T0 - timedelta(hours=i // 3), "sent_at": T0,
            "escalations_sent": 0})
    async with standalone_uow(settings, "notifier") as uow:
        await uow.conn.execute(insert(notifications), rows)
        await uow.commit()


async def test_notifications_page_newest_first_with_a_next_cursor(
    settings: Settings, notifier: httpx.AsyncClient
) -> None:
    urn, la = next_urn(), next_la()
    await _add_notifications(settings, urn, la, 8)
    dsl = bearer(person("dsl", schools=[urn]))
    whole = (await notifier.get("/v1/notifications", headers=dsl)).json()
    assert len(whole["items"]) == 8 and whole["next_cursor"] is None
    assert {"id", "created_at", "children"} <= set(whole["items"][0])
    created = [i["created_at"] for i in whole["items"]]
    assert created == sorted(created, reverse=True)
    for limit in (1, 3, 5):
        walked, pages = await _walk(notifier, "/v1/notifications", dsl, limit,
                                    _notifications_page)
        assert walked == whole["items"], limit
        assert pages == -(-8 // limit)
    for bad in ({"limit": "501"}, {"limit": "0"}, {"cursor": "WyJ4Il0"},
                {"cursor": encode_cursor("2026-11-02T09:00:00", str(uuid.uuid4()))},
                {"cursor": encode_cursor("2026-11-02T09:00:00+00:00", "not-an-id")}):
        resp = await notifier.get("/v1/notifications", params=bad, headers=dsl)
        assert resp.status_code == 422, bad


async def test_notifications_answer_100_by_default(
    settings: Settings, notifier: httpx.AsyncClient
) -> None:
    urn = next_urn()
    await _add_notifications(settings, urn, next_la(), 101)
    dsl = bearer(person("dsl", schools=[urn]))
    page = (await notifier.get("/v1/notifications", headers=dsl)).json()
    assert len(page["items"]) == 100 and page["next_cursor"]
    rest = (await notifier.get("/v1/notifications", params={"cursor": page["next_cursor"]},
                               headers=dsl)).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert len((await notifier.get("/v1/notifications", params={"limit": "500"},
                                   headers=dsl)).json()["items"]) == 101
