"""Pure notifier helpers: webhook signatures, backoff, content-free mail, disclosure, targets,
and the safety net's chain of owners."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from services.notifier.api import disclosed_view
from services.notifier.chain import Chain, Step, after, deadline, handed_to_la, next_step, owner
from services.notifier.channels import (
    EmailKind,
    backoff_delay,
    render_email,
    sign_webhook,
    spoken_time,
)
from services.notifier.handlers import la_target, plan_target, school_unable
from services.notifier.scheduling import next_repeat, next_school_day_start

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
    via = {"unmatched_reason": "school_closed", "via_school_urn": "103456",
           "via_school_name": "Oak Primary"}
    [shown] = disclosed_view(incident, [{"child": child, **via}])["children"]
    assert {k: shown[k] for k in via} == via


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


# --- the safety net: schools that cannot take a child, the LA's timings, the chain --------

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)  # GMT: London wall time is UTC


def at(hour: int, minute: int = 0, day: datetime = MONDAY) -> datetime:
    return day.replace(hour=hour, minute=minute)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"participates": False}, "school_not_participating"),
    ({"status": "closed"}, "school_closed"),
    ({"status": "closed", "participates": False}, "school_closed"),
    ({"contacts": []}, "school_not_ready"),
    ({"contacts": [{"role": "deputy_dsl", "email": "e@s.test"}]}, "school_not_ready"),
    ({"contacts": [{"role": "dsl", "email": ""}]}, "school_not_ready"),
], ids=["not-participating", "closed", "closed-and-not-participating", "no-contacts",
        "deputy-but-no-dsl", "dsl-without-an-address"])
def test_a_school_that_cannot_take_the_child_sends_it_to_the_la_with_school_and_reason(
    changes: dict[str, object], reason: str,
) -> None:
    school = SCHOOL | {"name": "Oak Primary"} | changes
    assert school_unable(school) == reason
    target = plan_target(SUNDAY_EVENING, school=school, la_code=None)
    assert (target.recipient_key, target.school_urn, target.recipient_role) == (
        "la:330", None, "safeguarding")
    assert (target.reason, target.via_school_urn, target.via_school_name) == (
        reason, "103456", "Oak Primary")
    assert (target.deadline_at, target.duty_at) == (at(9), at(8, 30))


def test_a_ready_school_keeps_the_child_and_the_dsl_must_act_before_the_deputy_hears() -> None:
    assert school_unable(SCHOOL) is None
    target = plan_target(SUNDAY_EVENING, school=SCHOOL, la_code=None)
    assert (target.reason, target.deadline_at, target.duty_at) == (None, target.deputy_at, None)


@pytest.mark.parametrize(("push_at", "deadline_at", "duty_at"), [
    (at(7), at(9), at(8, 30)),  # the morning push: duty manager 30 min before 09:00
    (at(8, 50), at(9), at(9, 20)),  # just before the deadline: 30 min for safeguarding first
    (at(14), at(14), at(14, 30)),  # in the afternoon: the push is the deadline
], ids=["morning-push", "push-close-to-the-deadline", "afternoon-push"])
def test_an_la_item_calls_its_duty_manager_before_the_deadline_but_not_at_once(
    push_at: datetime, deadline_at: datetime, duty_at: datetime,
) -> None:
    target = la_target("330", push_at)
    assert (target.deadline_at, target.duty_at) == (deadline_at, duty_at)
    assert la_target("330", push_at, before=timedelta(minutes=60)).duty_at == max(
        deadline_at - timedelta(minutes=60), push_at + timedelta(minutes=60))


def test_a_repeat_stays_on_its_beat_and_is_always_in_the_future() -> None:
    hour = timedelta(hours=1)
    assert next_repeat(at(9), at(9), every=hour) == at(10)
    assert next_repeat(at(9), at(9, 1), every=hour) == at(10)
    assert next_repeat(at(9), at(14, 30), every=hour) == at(15)  # away all day: one call
    assert next_repeat(at(9), at(8), every=hour) == at(10)


def test_the_next_school_day_start_skips_weekends_and_bank_holidays() -> None:
    friday_evening = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    assert next_school_day_start(friday_evening) == datetime(2026, 11, 30, 8, 45, tzinfo=UTC)
    assert next_school_day_start(at(8)) == at(8, 45)
    assert next_school_day_start(at(8, 45)) == at(8, 45, MONDAY + timedelta(days=1))
    christmas_eve = datetime(2026, 12, 24, 20, 0, tzinfo=UTC)  # Fri 25, Mon 28 bank holidays
    assert next_school_day_start(christmas_eve) == datetime(2026, 12, 29, 8, 45, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # BST: 08:45 in London is 07:45 UTC
    assert next_school_day_start(summer) == datetime(2026, 7, 1, 7, 45, tzinfo=UTC)


BEFORE = timedelta(minutes=30)


def school_chain(**changes: object) -> Chain:
    chain = Chain(state="scheduled", at_school=True, recipient_role="dsl", push_at=at(7),
                  deputy_at=at(9, 45), la_at=at(10, 45))
    return replace(chain, **changes)  # type: ignore[arg-type]


def walk(chain: Chain, until: datetime) -> list[tuple[str, datetime, str, str, datetime]]:
    """Take every step due by `until` on time, noting (action, at, role, owner, deadline)."""
    seen = []
    while (step := next_step(chain, before=BEFORE)) is not None and step.due_at <= until:
        chain = after(chain, step.action, step.due_at, before=BEFORE)
        seen.append((step.action, step.due_at, step.role, owner(chain),
                     deadline(chain, before=BEFORE)))
    return seen


def test_a_schools_chain_goes_dsl_deputy_la_then_the_duty_manager_every_hour() -> None:
    assert walk(school_chain(), at(13, 30)) == [
        ("send", at(7), "dsl", "dsl", at(9, 45)),
        ("escalate_to_deputy", at(9, 45), "deputy_dsl", "deputy_dsl", at(10, 45)),
        ("escalate_to_la", at(10, 45), "safeguarding", "safeguarding", at(11, 15)),
        ("call_duty_manager", at(11, 15), "duty_manager", "duty_manager", at(12, 15)),
        ("call_duty_manager", at(12, 15), "duty_manager", "duty_manager", at(13, 15)),
        ("call_duty_manager", at(13, 15), "duty_manager", "duty_manager", at(14, 15)),
    ]


def test_an_la_items_chain_goes_safeguarding_then_the_duty_manager_every_hour() -> None:
    target = la_target("330", at(7))
    chain = Chain(state="scheduled", at_school=False, recipient_role="safeguarding",
                  push_at=at(7), duty_at=target.duty_at)
    assert walk(chain, at(10)) == [
        ("send", at(7), "safeguarding", "safeguarding", at(9)),
        ("call_duty_manager", at(8, 30), "duty_manager", "duty_manager", at(9, 30)),
        ("call_duty_manager", at(9, 30), "duty_manager", "duty_manager", at(10, 30)),
    ]


@pytest.mark.parametrize("state", ["acknowledged", "cancelled", "retracted"])
def test_a_closed_notification_has_no_next_step(state: str) -> None:
    assert next_step(school_chain(state=state, duty_at=at(9)), before=BEFORE) is None


def test_handed_to_the_la_early_its_duty_manager_is_called_and_the_school_chain_goes_on() -> None:
    sent = after(school_chain(), "send", at(7), before=BEFORE)
    handed = handed_to_la(sent, at(7, 20), before=BEFORE)
    assert (handed.la_since, handed.duty_at, owner(handed)) == (at(7, 20), at(7, 50),
                                                                "safeguarding")
    assert deadline(handed, before=BEFORE) == at(7, 50)
    assert handed_to_la(handed, at(8), before=BEFORE) == handed  # once
    assert [(a, t) for a, t, *_ in walk(handed, at(10, 50))] == [
        ("call_duty_manager", at(7, 50)), ("call_duty_manager", at(8, 50)),
        ("escalate_to_deputy", at(9, 45)), ("call_duty_manager", at(9, 50)),
        ("escalate_to_la", at(10, 45)), ("call_duty_manager", at(10, 50))]


def test_a_row_from_before_the_safety_net_still_has_a_next_step() -> None:
    escalated = school_chain(state="escalated", escalations_sent=2)
    assert next_step(escalated, before=BEFORE) == Step("call_duty_manager", at(11, 15),
                                                       "duty_manager")
    la_row = Chain(state="sent", at_school=False, recipient_role="safeguarding", push_at=at(7))
    assert next_step(la_row, before=BEFORE) == Step("call_duty_manager", at(8, 30),
                                                    "duty_manager")


@pytest.mark.parametrize("kind", ["review_waiting", "review_overdue"])
def test_review_emails_name_the_la_the_count_and_the_deadline_only(kind: EmailKind) -> None:
    subject, body = render_email(kind, name="Dudley", count=1, link="https://x/t",
                                 deadline_at=at(8, 45))
    assert "a review is" in subject and "Dudley" in subject
    assert "deadline Monday 23 November, 8:45am" in subject + body
    subject, _ = render_email(kind, name="Dudley", count=3, link=None, deadline_at=None)
    assert "3 reviews are" in subject and "deadline" not in subject


def test_handed_on_and_duty_emails_say_what_happened() -> None:
    subject, body = render_email("delivery_failed", name="Oak Primary", count=2, link="l")
    assert "could not be delivered" in subject and "passed to you" in body
    subject, _ = render_email("escalation_duty", name="Dudley", count=1, link="l")
    assert "unacknowledged" in subject
    assert spoken_time(datetime(2026, 7, 1, 16, 5, tzinfo=UTC)) == "Wednesday 1 July, 5:05pm"


def test_attendance_prompt_asks_for_attendance_and_names_no_child() -> None:
    subject, body = render_email("attendance_prompt", name="Oak Primary", count=1, link="l")
    assert "attendance not yet recorded" in subject and "escalated" not in body
    assert "local authority is told" in body
