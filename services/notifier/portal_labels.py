"""The words people read in the portal, in one place: London times as people write them, each
code as a label (states, incident types, reasons, roles, actions, answers), schools by name
with the URN beside, and deadlines relative to now ("school day starts in 2 hours 10 minutes").
Plain functions over plain values; the templates reach them as filters (portal_pages.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from markupsafe import Markup, escape

from services.common.local_time import LONDON

STATE_LABELS = {
    "scheduled": "Waiting for the morning e-mail", "sent": "New", "viewed": "Read",
    "escalated": "Escalated: not acknowledged in time", "acknowledged": "Acknowledged",
    "cancelled": "Withdrawn before it was sent", "retracted": "Withdrawn by the police",
}
# the inbox's groups, each a GOV.UK tag colour: what the person still has to do
GROUPS = {"new": "New", "unacknowledged": "Not yet acknowledged",
          "acknowledged": "Acknowledged", "withdrawn": "Withdrawn"}
GROUP_TAGS = {"new": "govuk-tag--blue", "unacknowledged": "govuk-tag--orange",
              "acknowledged": "govuk-tag--green", "withdrawn": "govuk-tag--grey"}
STATE_GROUPS = {"scheduled": "new", "sent": "new", "viewed": "unacknowledged",
                "escalated": "unacknowledged", "acknowledged": "acknowledged",
                "cancelled": "withdrawn", "retracted": "withdrawn"}
INCIDENT_TYPES = {
    "domestic_abuse": "Domestic abuse",
    "domestic_abuse_crime": "Domestic abuse (a crime was recorded)",
    "domestic_abuse_non_crime": "Domestic abuse (no crime was recorded)",
}
REASON_LABELS = {
    "not_on_roll": "On no school's roll", "not_school_age": "Not of school age",
    "home_educated": "Home educated", "no_candidate": "No pupil resembles the child",
    "school_holiday": "The school is on holiday",
    "absent_after_incident": "Reported absent by the school the morning after",
    "attendance_unknown": "The school did not say whether the child attended",
    "school_not_participating": "The school does not take part in Operation Encompass",
    "school_closed": "The school is closed",
    "school_not_ready": "The school has no DSL contact registered",
}
ROLE_LABELS = {
    "dsl": "the DSL", "deputy_dsl": "the deputy DSL", "holiday_cover": "holiday cover",
    "safeguarding": "the LA's safeguarding contact", "review": "the LA's review contact",
    "duty_manager": "the LA's duty manager", "service_desk": "the Daybreak service desk",
}
GENDERS = {"F": "Female", "M": "Male", "X": "Other", "U": "Not known"}
# the partner directory's need types (schemas.notifications.NEED_TYPES), as people name them
NEED_LABELS = {
    "education_welfare": "Education welfare service",
    "educational_psychology": "Educational psychology",
    "school_nurse": "School nurse",
    "camhs": "CAMHS (children and young people's mental health services)",
    "early_help": "Early Help (CAF)",
    "childrens_social_care": "Children's social care",
    "housing": "Housing",
    "young_carers": "Young carers",
    "youth_offending": "Youth offending service",
    "voluntary": "Voluntary agencies",
    "domestic_abuse_services": "Domestic abuse services (IDVA)",
    "police_contact": "Police contact for the incident",
}
# what a school did (schemas.notifications.ACTION_TYPES), as people say it
ACTION_LABELS = {
    "education_welfare": "Referral to the education welfare service",
    "educational_psychology": "Referral to educational psychology",
    "school_nurse": "Referral to the school nurse",
    "camhs": "Referral to CAMHS",
    "early_help": "Early Help started (CAF)",
    "childrens_social_care": "Referral to children's social care",
    "housing": "Referral to housing",
    "young_carers": "Referral to the young carers service",
    "youth_offending": "Referral to the youth offending service",
    "voluntary": "Referral to a voluntary agency",
    "domestic_abuse_services": "Referral to domestic abuse services (IDVA)",
    "police_contact": "Spoke to the police contact for the incident",
    "support_in_school": "Support in school",
    "none_needed": "No action needed",
}
CHILD_FIELDS = {
    "present_at_incident": "Present at the incident", "voice_of_child": "Voice of the child",
    "gender": "Gender", "address": "Address", "upn": "Unique pupil number (UPN)",
    "school_hint": "School the police gave", "unmatched_reason": "Why the LA was told",
    "via_school_urn": "Through the school", "via_school_name": "Through the school",
}


def london_time(value: str | datetime | None) -> str:
    """'Tuesday 1 December 2026, 5:21am' in London, as people write it."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = moment.astimezone(LONDON)
    hour, half = local.hour % 12 or 12, "am" if local.hour < 12 else "pm"
    return f"{local:%A} {local.day} {local:%B %Y}, {hour}:{local:%M}{half}"


def time_tag(value: str | datetime | None) -> Markup:
    """The London time in words inside `<time datetime="ISO">` (the machine's value)."""
    if not value:
        return Markup("")
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return Markup('<time datetime="{}">{}</time>').format(moment.isoformat(),
                                                          london_time(moment))


def long_date(value: str | date | None) -> str:
    """'2 March 2016'."""
    if not value:
        return ""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day.day} {day:%B %Y}"


def duration(minutes: int) -> str:
    """'2 hours 10 minutes', '1 hour', '1 minute', 'less than a minute'."""
    if minutes < 1:
        return "less than a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{n} {unit}{'' if n == 1 else 's'}"
             for n, unit in ((days, "day"), (hours, "hour"), (mins, "minute")) if n]
    return " ".join(parts[:2])  # '1 day 3 hours': minutes matter only within the day


def minutes_until(deadline: datetime, now: datetime) -> int:
    """Whole minutes from `now` to `deadline` (negative once it has gone by)."""
    return math.floor((deadline - now).total_seconds() / 60)


def relative(deadline: datetime, now: datetime, event: str = "school day") -> str:
    """'school day starts in 2 hours 10 minutes', or 'school day started 5 minutes ago'."""
    left = minutes_until(deadline, now)
    if left > 0:
        return f"{event} starts in {duration(left)}"
    return f"{event} started {duration(-left)} ago"


def time_left(deadline: datetime, now: datetime) -> str:
    """'1 hour 20 minutes left', or 'overdue by 5 minutes'."""
    left = minutes_until(deadline, now)
    return f"{duration(left)} left" if left > 0 else f"overdue by {duration(-left)}"


def school(urn: str | None, names: Mapping[str, str], la_code: str | None = None) -> str:
    """'Oak Road Primary (URN 103456)'; an LA's own item names the LA."""
    if not urn:
        return f"Local authority {la_code}" if la_code else "The local authority"
    return f"{names.get(urn) or 'School'} (URN {urn})"


def yes_no(value: bool | None) -> str:
    """A flag in words."""
    return "Not known" if value is None else ("Yes" if value else "No")


def attended(value: bool | None) -> str:
    """The school's attendance answer in words."""
    return "Not recorded yet" if value is None else ("Attended" if value else "Absent")


def child_field(key: str, value: Any) -> str:
    """One disclosed field of a child, in words."""
    if isinstance(value, bool) or (value is None and key == "present_at_incident"):
        return yes_no(value)
    if key == "gender":
        return GENDERS.get(str(value), str(value))
    if key == "address" and isinstance(value, Mapping):
        parts = ("line1", "line2", "town", "postcode")
        return ", ".join(str(value[p]) for p in parts if value.get(p))
    if key == "school_hint" and isinstance(value, Mapping):
        urn = f" (URN {value['urn']})" if value.get("urn") else ""
        return f"{value.get('name') or 'A school'}{urn}"
    if key == "unmatched_reason":
        return REASON_LABELS.get(str(value), str(value))
    return "" if value is None else str(value)


def label(labels: Mapping[str, str], code: str | None) -> str:
    """A code's label, or the code made readable when it has none yet."""
    if not code:
        return ""
    return labels.get(code) or code.replace("_", " ").capitalize()


def tag(state: str) -> Markup:
    """A notification's state as a GOV.UK tag coloured by its inbox group."""
    colour = GROUP_TAGS.get(STATE_GROUPS.get(state, ""), "govuk-tag--grey")
    return Markup('<strong class="govuk-tag {}">{}</strong>').format(
        colour, escape(label(STATE_LABELS, state)))


def phone_href(number: str) -> str:
    """'0121 303 1234' → 'tel:01213031234' (the number as a phone dials it)."""
    return "tel:" + "".join(ch for ch in number if ch.isdigit() or ch == "+")
