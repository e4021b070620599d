"""Pure notifier helpers: webhook signatures, backoff, content-free mail, disclosure, targets."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, time, timedelta

from services.notifier.api import disclosed_view
from services.notifier.channels import backoff_delay, render_email, sign_webhook
from services.notifier.handlers import plan_target

SUNDAY_EVENING = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
SCHOOL = {"urn": "103456", "la_code": "330", "participates": True, "status": "open",
          "day_starts_at": time(8, 45), "contacts": [{"role": "dsl", "email": "d@s.test"}]}


def test_signature_is_hmac_of_timestamp_dot_body() -> None:
    body = b'{"a": 1}'
    want = hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign_webhook("secret", timestamp=1700000000, body=body) == f"sha256={want}"
    assert sign_webhook("secret", timestamp=1700000001, body=body) != f"sha256={want}"


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, base_s=5).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]
    assert backoff_delay(30, base_s=5) == timedelta(hours=1)


def test_emails_name_the_school_and_count_only() -> None:
    subject, body = render_email("notice", name="Oak Primary", count=2, link="https://x/t")
    assert "2 new notifications for Oak Primary" in subject and "https://x/t" in body
    subject, body = render_email("retraction", name="Oak Primary", count=1, link=None)
    assert "withdrawn" in subject and "http" not in body


def test_only_the_forces_fields_and_the_childs_names_are_disclosed() -> None:
    incident = {"incident_id": "i", "force_code": "WMP", "summary": "hidden",
                "occurred_at": "2026-11-22T18:00:00Z", "disclosure_fields": ["occurred_at", "upn"]}
    child = {"given_name": "Zara", "family_name": "Okafor", "date_of_birth": "2015-01-09",
             "upn": "A123456789012", "voice_of_child": "hidden"}
    view = disclosed_view(incident, [{"child": child, "unmatched_reason": None}])
    assert view["incident"] == {"incident_id": "i", "force_code": "WMP",
                                "occurred_at": "2026-11-22T18:00:00Z"}
    assert view["children"] == [{"given_name": "Zara", "family_name": "Okafor",
                                 "date_of_birth": "2015-01-09", "upn": "A123456789012"}]


def test_participating_school_is_pushed_at_seven_and_escalates() -> None:
    target = plan_target(SUNDAY_EVENING, school=SCHOOL, la_code=None)
    assert target.recipient_key == "school:103456" and target.recipient_role == "dsl"
    assert target.push_at == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert target.deputy_at == datetime(2026, 11, 23, 9, 45, tzinfo=UTC)
    assert target.la_at == datetime(2026, 11, 23, 10, 45, tzinfo=UTC)


def test_non_participating_or_unknown_school_goes_to_the_la() -> None:
    target = plan_target(SUNDAY_EVENING, school=SCHOOL | {"participates": False}, la_code=None)
    assert (target.recipient_key, target.school_urn, target.la_code) == ("la:330", None, "330")
    assert target.deputy_at is None
    assert plan_target(SUNDAY_EVENING, school=None, la_code="999").recipient_key == "la:999"
