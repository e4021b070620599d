"""Pure receipt rules: a notification's view after retractions, the children listed, the
listing's cursor, and the webhook URL rule both schools and forces follow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.common.problems import Problem
from services.common.webhook_signing import check_webhook_url
from services.ingest.receipts_api import decode_cursor, encode_cursor, parse_since
from services.ingest.receipts_view import children_view, notification_view

SET_AT = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def row(**fields: Any) -> SimpleNamespace:
    base: dict[str, Any] = {
        "notification_id": uuid.uuid4(), "school_urn": "103456", "la_code": "332",
        "recipient_role": "school", "child_indexes": [0, 1], "child_indexes_at": SET_AT,
        "retracted_children": [], "scheduled_at": SET_AT, "push_at": SET_AT,
        "deadline_at": None, "pushed_at": None, "first_viewed_at": None,
        "acknowledged_at": None, "escalations": [], "retracted_at": None,
        "retract_reason": None, "actions": []}
    return SimpleNamespace(**base | fields)


def gone(index: int, minutes: int, reason: str = "child_withdrawn") -> dict[str, Any]:
    return {"child_index": index, "reason": reason,
            "at": (SET_AT + timedelta(minutes=minutes)).isoformat()}


@pytest.mark.parametrize(("retracted", "left", "whole"), [
    ([], [0, 1], None),
    ([gone(1, 5)], [0], None),
    ([gone(1, -5)], [0, 1], None),  # retracted before a correction set the children again
    ([gone(0, 5), gone(1, 9, "corrected")], [], "corrected"),
], ids=["none", "one-child", "before-correction", "every-child"])
def test_a_retracted_child_leaves_the_notification(
    retracted: list[dict[str, Any]], left: list[int], whole: str | None
) -> None:
    view = notification_view(row(retracted_children=retracted))
    assert view["child_indexes"] == left
    assert view["retract_reason"] == whole
    assert (view["retracted_at"] is None) == (whole is None)


def test_escalations_and_actions_read_in_order() -> None:
    view = notification_view(row(
        escalations=[{"stage": "la", "at": "2026-11-23T11:00:00+00:00"},
                     {"stage": "deputy", "at": "2026-11-23T10:00:00+00:00"}],
        actions=[{"type": "camhs", "on": "2026-11-25"},
                 {"type": "early_help", "on": "2026-11-24"}]))
    assert [e["stage"] for e in view["escalations"]] == ["deputy", "la"]
    assert [a["type"] for a in view["actions"]] == ["early_help", "camhs"]


def test_every_reported_child_is_listed_decided_or_not() -> None:
    decided = SimpleNamespace(child_index=1, outcome="review", school_urns=[], la_code="332")
    assert children_view(2, [decided]) == [
        {"child_index": 0, "outcome": None, "school_urns": [], "la_code": None},
        {"child_index": 1, "outcome": "review", "school_urns": [], "la_code": "332"}]


def test_a_cursor_keeps_its_place_and_filter() -> None:
    since = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert decode_cursor(encode_cursor(41, since)) == (41, since)
    assert decode_cursor(encode_cursor(7, None)) == (7, None)


@pytest.mark.parametrize("cursor", ["", "%%%", "bnVsbA", "W10", "eyJhZnRlciI6IHRydWV9",
                                    encode_cursor(2**63, None)],
                         ids=["empty", "not-base64", "null", "list", "bool", "too-far"])
def test_a_cursor_this_api_did_not_make_is_422(cursor: str) -> None:
    with pytest.raises(Problem) as refused:
        decode_cursor(cursor)
    assert refused.value.status == 422


@pytest.mark.parametrize("value", ["2026-12-01", "2026-12-01T09:00:00",
                                   "0001-01-01T00:00:00+14:00"])
def test_updated_since_needs_an_offset_and_a_real_moment(value: str) -> None:
    with pytest.raises(Problem):
        parse_since(value)


@pytest.mark.parametrize(("url", "ok"), [
    ("https://police.example/receipts", True), ("http://127.0.0.1:9000/hook", True),
    ("http://police.example/receipts", False), ("https://user:pw@police.example/", False),
    ("ftp://police.example/", False),
])
def test_a_webhook_goes_over_https_or_to_this_machine(url: str, ok: bool) -> None:
    if ok:
        assert check_webhook_url(url) == url
    else:
        with pytest.raises(ValueError):
            check_webhook_url(url)
