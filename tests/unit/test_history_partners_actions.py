"""The rules behind structured actions, the child's history and the partner directory: action
dates, the 12-month window, partner validation, and the people's words for each code."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError
from starlette.datastructures import FormData

from schemas.notifications import ACTION_TYPES, NEED_TYPES
from services.common.problems import Problem
from services.notifier import portal_labels as labels
from services.notifier.actions import (
    ActionIn,
    action_of_form,
    actions_of_form,
    check_dates,
    date_errors,
    date_problem,
)
from services.notifier.history import window_start
from services.notifier.partners import Partner, PartnersIn, by_need, uk_phone_digits

RECEIVED = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 11:30pm in London, Monday
NOW = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)  # 12:30am Wednesday


@pytest.mark.parametrize(("on", "why"), [
    pytest.param(date(2026, 11, 30), None, id="the-day-received"),
    pytest.param(date(2026, 12, 2), None, id="today"),
    pytest.param(date(2026, 12, 3), "future", id="tomorrow"),
    pytest.param(date(2026, 11, 29), "before", id="before-it-was-received"),
])
def test_an_action_is_dated_between_receipt_and_today_in_london(on: date, why: str | None
                                                                 ) -> None:
    found = date_problem(on, received_at=RECEIVED, now=NOW)
    assert (found is None) if why is None else (why in (found or ""))


def test_refused_dates_name_each_action_and_never_the_value() -> None:
    ok, late = ActionIn(type="early_help", on=date(2026, 12, 1)), ActionIn(
        type="housing", on=date(2026, 12, 9), note="Rehoused with Amelia")
    with pytest.raises(Problem) as refused:
        check_dates([ok, late], received_at=RECEIVED, now=NOW)
    assert refused.value.status == 422
    assert [e["field"] for e in refused.value.extra["errors"]] == ["actions[1].on"]
    assert "Amelia" not in str(refused.value.extra)
    assert date_errors(refused.value, [ok, late]) == [
        {"href": "#on-housing", "message": "The date of an action cannot be in the future"}]
    with pytest.raises(Problem) as single:
        check_dates([late], received_at=RECEIVED, now=NOW, field="")
    assert single.value.extra["errors"][0]["field"] == "on"
    assert date_errors(single.value, [late])[0]["href"] == "#on"


def test_an_action_is_a_known_type_with_a_short_note() -> None:
    assert ActionIn(type="none_needed", on=date(2026, 12, 1), note="  spoke to mum ").note == (
        "spoke to mum")
    for bad in ({"type": "tea", "on": "2026-12-01"}, {"type": "camhs", "on": "yesterday"},
                {"type": "camhs", "on": "2026-12-01", "note": "x" * 501},
                {"type": "camhs", "on": "2026-12-01", "extra": 1}):
        with pytest.raises(ValidationError):
            ActionIn.model_validate(bad)


def test_the_acknowledgement_form_reads_each_ticked_action_with_its_date_and_note() -> None:
    form = FormData([("action", "early_help"), ("action", "support_in_school"),
                     ("on-early_help", "2026-12-01"), ("note-early_help", "CAF opened"),
                     ("on-support_in_school", "2026-12-02"), ("note-support_in_school", ""),
                     ("on-camhs", "2026-12-02")])  # not ticked: ignored
    actions, errors = actions_of_form(form)
    assert errors == []
    assert [(a.type, a.on.isoformat(), a.note) for a in actions] == [
        ("early_help", "2026-12-01", "CAF opened"), ("support_in_school", "2026-12-02", None)]


@pytest.mark.parametrize(("fields", "href"), [
    pytest.param([], "#action", id="nothing-ticked"),
    pytest.param([("action", "tea")], "#action", id="unknown-type"),
    pytest.param([("action", "camhs"), ("on-camhs", "")], "#on-camhs", id="no-date"),
    pytest.param([("action", "camhs"), ("on-camhs", "2026-12-01"), ("note-camhs", "x" * 501)],
                 "#note-camhs", id="long-note"),
])
def test_the_acknowledgement_forms_errors_link_to_the_field(
    fields: list[tuple[str, str]], href: str
) -> None:
    _, errors = actions_of_form(FormData(fields))
    assert [e["href"] for e in errors] == [href]


def test_the_follow_up_form_is_one_action() -> None:
    action, errors = action_of_form({"type": "housing", "on": "2026-12-01", "note": ""})
    assert action == ActionIn(type="housing", on=date(2026, 12, 1)) and errors == []
    assert action_of_form({"type": "", "on": "2026-12-01"})[1][0]["href"] == "#type"
    assert action_of_form({"type": "housing", "on": "soon"})[1][0]["href"] == "#on"


@pytest.mark.parametrize(("at", "start"), [
    pytest.param(datetime(2026, 12, 2, 9, tzinfo=UTC), datetime(2025, 12, 2, 9, tzinfo=UTC),
                 id="a-year-back"),
    pytest.param(datetime(2028, 2, 29, 9, tzinfo=UTC), datetime(2027, 2, 28, 9, tzinfo=UTC),
                 id="leap-day"),
])
def test_the_history_looks_back_12_months(at: datetime, start: datetime) -> None:
    assert window_start(at) == start


@pytest.mark.parametrize(("written", "digits"), [
    pytest.param("0121 303 1234", "01213031234", id="landline"),
    pytest.param("+44 (0)7700 900123", "07700900123", id="international-with-0"),
    pytest.param("+44 121 303-1234", "01213031234", id="international"),
    pytest.param("101", "101", id="police-non-emergency"),
    pytest.param("116 123", "116123", id="helpline"),
])
def test_uk_phone_numbers_as_people_write_them(written: str, digits: str) -> None:
    assert uk_phone_digits(written) == digits


@pytest.mark.parametrize("written", ["12345", "0121 303 12345 6", "+1 212 555 0100",
                                     "call the office", "0121-ABC"])
def test_other_phone_numbers_are_refused(written: str) -> None:
    with pytest.raises(ValueError):
        uk_phone_digits(written)


GOOD = {"need_type": "early_help", "name": "Early Help hub", "phone": "0121 303 1234",
        "email": "early.help@la.example.org", "web": "https://la.example.org/early-help",
        "hours": "Monday to Friday, 9am to 5pm", "guidance": "Ring first; then the form."}


def test_a_partner_entry_keeps_what_people_typed() -> None:
    entry = Partner.model_validate(GOOD).row()
    assert entry["phone"] == "0121 303 1234" and entry["web"].startswith("https://")
    bare = Partner.model_validate({"need_type": "housing", "name": "Housing"})
    assert bare.row()["email"] is None


@pytest.mark.parametrize(("field", "value"), [
    pytest.param("need_type", "tea", id="need-type"),
    pytest.param("email", "not an address", id="email"),
    pytest.param("email", "a@b", id="email-no-domain"),
    pytest.param("web", "http://la.example.org", id="plain-http"),
    pytest.param("web", "javascript:alert(1)", id="script-url"),
    pytest.param("phone", "+33 1 23 45 67 89", id="foreign-phone"),
    pytest.param("guidance", "x" * 1001, id="long-guidance"),
    pytest.param("name", "", id="no-name"),
    pytest.param("name", "a\nb", id="control-character"),
])
def test_a_partner_entry_is_refused_field_by_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Partner.model_validate(GOOD | {field: value})
    assert [e["loc"][0] for e in refused.value.errors()] == [field]


def test_the_directory_is_a_whole_list_grouped_in_need_type_order() -> None:
    with pytest.raises(ValidationError):
        PartnersIn.model_validate({"partners": [GOOD] * 201})
    entries = [GOOD | {"need_type": "police_contact", "name": "P"}, GOOD,
               GOOD | {"name": "Second hub"}]
    grouped = by_need(entries)
    assert list(grouped) == ["early_help", "police_contact"]
    assert [e["name"] for e in grouped["early_help"]] == ["Early Help hub", "Second hub"]


def test_every_need_and_action_type_has_peoples_words() -> None:
    assert set(labels.NEED_LABELS) == set(NEED_TYPES)
    assert set(labels.ACTION_LABELS) == set(ACTION_TYPES)
    assert all(not any(ch == "_" for ch in words) for words in labels.ACTION_LABELS.values())
    assert labels.label(labels.NEED_LABELS, "domestic_abuse_services") == (
        "Domestic abuse services (IDVA)")
    assert labels.phone_href("+44 121 303-1234") == "tel:+441213031234"
