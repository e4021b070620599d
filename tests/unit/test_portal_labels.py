"""The portal's words (services/notifier/portal_labels.py): London times as people write them,
codes as labels, schools by name with the URN, deadlines relative to now; and the inbox's
pager and filters (services/notifier/portal_inbox.py), which need no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.notifier import portal_labels as labels
from services.notifier.portal_inbox import Filters, page_number, pager
from services.notifier.portal_reviews import countdown

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_times_read_in_london_as_people_write_them() -> None:
    assert labels.london_time("2026-12-01T05:21:58.675292Z") == "Tuesday 1 December 2026, 5:21am"
    # British Summer Time: 12:05 UTC is 1:05pm in London
    assert labels.london_time(datetime(2026, 7, 3, 12, 5, tzinfo=UTC)) == (
        "Friday 3 July 2026, 1:05pm")
    assert labels.london_time(datetime(2026, 3, 2, 0, 30, tzinfo=UTC)) == (
        "Monday 2 March 2026, 12:30am")
    assert labels.london_time(None) == ""


def test_the_time_element_carries_the_machine_value() -> None:
    tag = labels.time_tag("2026-12-01T05:21:58.675292+00:00")
    assert str(tag) == ('<time datetime="2026-12-01T05:21:58.675292+00:00">'
                        "Tuesday 1 December 2026, 5:21am</time>")
    assert str(labels.time_tag(None)) == ""


def test_dates_and_durations() -> None:
    assert labels.long_date("2016-03-02") == "2 March 2016"
    assert labels.long_date(date(2017, 5, 5)) == "5 May 2017"
    assert [labels.duration(m) for m in (0, 1, 5, 60, 130, 61, 1440, 1500 + 7)] == [
        "less than a minute", "1 minute", "5 minutes", "1 hour", "2 hours 10 minutes",
        "1 hour 1 minute", "1 day", "1 day 1 hour"]


@pytest.mark.parametrize(("left", "words"), [
    (timedelta(hours=2, minutes=10), "school day starts in 2 hours 10 minutes"),
    (timedelta(minutes=1, seconds=59), "school day starts in 1 minute"),
    (timedelta(seconds=30), "school day started less than a minute ago"),
    (timedelta(minutes=-5), "school day started 5 minutes ago"),
])
def test_relative_deadlines(left: timedelta, words: str) -> None:
    assert labels.relative(NOW + left, NOW) == words


@pytest.mark.parametrize(("left", "text", "overdue"), [
    (timedelta(hours=1, minutes=20), "1 hour 20 minutes left", False),
    (timedelta(minutes=5), "5 minutes left", False), (timedelta(hours=3), "3 hours left", False),
    (timedelta(0), "overdue by less than a minute", True),
    (timedelta(minutes=-90), "overdue by 1 hour 30 minutes", True),
])
def test_the_countdown_says_the_time_left(left: timedelta, text: str, overdue: bool) -> None:
    found = countdown(NOW + left, NOW)
    assert (found.text, found.overdue) == (text, overdue)


def test_a_reviews_countdown_is_relative_to_the_school_day() -> None:
    assert countdown(NOW + timedelta(minutes=45), NOW, "school day").text == (
        "school day starts in 45 minutes")
    late = countdown(NOW - timedelta(minutes=5), NOW, "school day")
    assert late.overdue and late.text == "overdue: school day started 5 minutes ago"
    assert late.bar == 0


def test_codes_become_labels() -> None:
    assert labels.label(labels.INCIDENT_TYPES, "domestic_abuse") == "Domestic abuse"
    assert labels.label(labels.STATE_LABELS, "scheduled") == "Waiting for the morning e-mail"
    assert labels.label(labels.STATE_LABELS, "some_new_state") == "Some new state"
    assert labels.label(labels.ROLE_LABELS, "duty_manager") == "the LA's duty manager"
    assert labels.ACTION_LABELS["childrens_social_care"] == "Referral to children's social care"
    assert labels.child_field("present_at_incident", True) == "Yes"
    assert labels.child_field("present_at_incident", None) == "Not known"
    assert labels.child_field("gender", "F") == "Female"
    assert labels.child_field("unmatched_reason", "not_on_roll") == "On no school's roll"
    assert labels.child_field("address", {"line1": "3 Elm Way", "town": None,
                                          "postcode": "WV1 1AA"}) == "3 Elm Way, WV1 1AA"
    assert labels.child_field("school_hint", {"urn": "103456", "name": None}) == (
        "A school (URN 103456)")
    assert [labels.attended(v) for v in (True, False, None)] == [
        "Attended", "Absent", "Not recorded yet"]


def test_schools_by_name_with_the_urn_beside() -> None:
    names = {"103456": "Oak Road Primary"}
    assert labels.school("103456", names) == "Oak Road Primary (URN 103456)"
    assert labels.school("999999", names) == "School (URN 999999)"
    assert labels.school(None, names, "332") == "Local authority 332"


def test_states_are_tags_coloured_by_what_is_left_to_do() -> None:
    assert str(labels.tag("sent")) == '<strong class="govuk-tag govuk-tag--blue">New</strong>'
    assert "govuk-tag--orange" in labels.tag("escalated")
    assert "govuk-tag--green" in labels.tag("acknowledged")
    assert "&lt;b&gt;" in labels.tag("<b>")  # an unknown code is escaped, never markup
    assert set(labels.STATE_GROUPS.values()) == set(labels.GROUPS)
    assert set(labels.STATE_GROUPS) == set(labels.STATE_LABELS)


def test_the_pager_offers_the_first_last_and_neighbouring_pages() -> None:
    pages = pager(5, 200, "/portal/", {"state": "new", "page": "5", "from": ""})
    assert (pages.page, pages.pages, pages.first, pages.last) == (5, 10, 81, 100)
    assert pages.numbers() == [1, None, 4, 5, 6, None, 10]
    assert pages.href(1) == "/portal/?state=new"
    assert pages.href(6) == "/portal/?state=new&page=6"
    assert pager(99, 3, "/portal/", {}).page == 1  # past the end: the last page
    assert pager(1, 0, "/portal/", {}).numbers() == [1]
    assert [page_number(v) for v in (None, "", "3", "x", "-2")] == [1, 1, 3, 1, 1]


def test_the_filters_read_the_form_and_say_what_is_wrong() -> None:
    fine = Filters.of({"state": "acknowledged", "from": "2026-11-30", "to": "2026-12-01"})
    assert (fine.group, fine.since, fine.until, fine.errors) == (
        "acknowledged", date(2026, 11, 30), date(2026, 12, 1), [])
    assert fine.holds(datetime(2026, 12, 1, 23, 59, tzinfo=UTC)) is True
    assert fine.holds(datetime(2026, 12, 2, 0, 0, tzinfo=UTC)) is False
    assert fine.holds(datetime(2026, 11, 29, 23, 59, tzinfo=UTC)) is False
    summer = Filters.of({"to": "2026-07-01"})  # in London's days: 23:30 UTC is 00:30 BST
    assert summer.holds(datetime(2026, 7, 1, 22, 59, tzinfo=UTC))
    assert not summer.holds(datetime(2026, 7, 1, 23, 30, tzinfo=UTC))
    bad = Filters.of({"state": "lost", "from": "31/02/2026", "to": ""})
    assert bad.group == "" and bad.since is None
    assert [e["href"] for e in bad.errors] == ["#state", "#from"]
    backwards = Filters.of({"from": "2026-12-02", "to": "2026-12-01"})
    assert [e["href"] for e in backwards.errors] == ["#to"] and backwards.until is None
