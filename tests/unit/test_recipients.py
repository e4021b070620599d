"""Who an e-mail goes to, and who is told when it fails for good, as tables of fixed cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from services.notifier.channels import EmailKind
from services.notifier.recipients import Recipients, choose_recipients, hand_on_recipients


def contact(role: str, email: str) -> dict[str, Any]:
    return {"role": role, "email": email, "name": email.split("@")[0]}


DESK = "desk@daybreak.test"
SCHOOL = [contact("dsl", "dsl@oak.sch"), contact("dsl", "dsl2@oak.sch"),
          contact("deputy_dsl", "deputy@oak.sch"), contact("holiday_cover", "cover@oak.sch")]
NO_COVER = [c for c in SCHOOL if c["role"] != "holiday_cover"]
NO_DEPUTY = [c for c in SCHOOL if c["role"] != "deputy_dsl"]
LA = [contact("safeguarding", "mash@la.gov"), contact("officer", "officer@la.gov"),
      contact("review", "reviews@la.gov"), contact("duty_manager", "duty@la.gov")]
SAFEGUARDING_ONLY = [contact("safeguarding", "mash@la.gov")]
DSL_ONLY = [contact("dsl", "dsl@oak.sch")]


@dataclass(frozen=True)
class Case:
    kind: EmailKind
    role: str
    school: list[dict[str, Any]] | None
    la: list[dict[str, Any]] | None
    to_role: str
    to: tuple[str, ...]


MASH, DSLS = ("mash@la.gov",), ("dsl@oak.sch", "dsl2@oak.sch")
CASES = {
    "notice-dsl": Case("notice", "dsl", SCHOOL, LA, "dsl", DSLS),
    "retraction-dsl": Case("retraction", "dsl", SCHOOL, LA, "dsl", DSLS),
    "notice-holiday-cover": Case("notice", "holiday_cover", SCHOOL, LA, "holiday_cover",
                                 ("cover@oak.sch",)),
    "holiday-cover-names-nobody-falls-back-to-dsl": Case(
        "notice", "holiday_cover", NO_COVER, LA, "dsl", DSLS),
    "escalation-deputy": Case("escalation_deputy", "dsl", SCHOOL, LA, "deputy_dsl",
                              ("deputy@oak.sch",)),
    "no-deputy-falls-back-to-la-safeguarding": Case("escalation_deputy", "dsl", NO_DEPUTY, LA,
                                                    "safeguarding", MASH),
    "no-deputy-and-la-unknown-goes-to-the-desk": Case("escalation_deputy", "dsl", NO_DEPUTY,
                                                      None, "service_desk", (DESK,)),
    "escalation-la-goes-to-la-safeguarding": Case("escalation_la", "dsl", SCHOOL, LA,
                                                  "safeguarding", MASH),
    "escalation-la-unknown-la-goes-to-the-desk": Case("escalation_la", "dsl", SCHOOL, None,
                                                      "service_desk", (DESK,)),
    "escalation-duty-goes-to-the-duty-manager": Case("escalation_duty", "safeguarding", None,
                                                     LA, "duty_manager", ("duty@la.gov",)),
    "no-duty-manager-falls-back-to-safeguarding": Case(
        "escalation_duty", "safeguarding", None, SAFEGUARDING_ONLY, "safeguarding", MASH),
    "review-waiting-goes-to-the-review-contact": Case("review_waiting", "review", None, LA,
                                                      "review", ("reviews@la.gov",)),
    "no-review-contact-falls-back-to-safeguarding": Case(
        "review_waiting", "review", None, SAFEGUARDING_ONLY, "safeguarding", MASH),
    "review-overdue-goes-to-the-duty-manager": Case("review_overdue", "review", None, LA,
                                                    "duty_manager", ("duty@la.gov",)),
    "delivery-failed-to-the-named-role": Case("delivery_failed", "duty_manager", SCHOOL, LA,
                                              "duty_manager", ("duty@la.gov",)),
    "la-notice-no-school": Case("notice", "safeguarding", None, LA, "safeguarding", MASH),
    "la-retraction-no-school": Case("retraction", "safeguarding", None, LA, "safeguarding",
                                    MASH),
    "school-and-la-unknown-goes-to-the-desk": Case("notice", "safeguarding", None, None,
                                                   "service_desk", (DESK,)),
    "school-with-no-contacts-falls-back-to-la": Case("notice", "dsl", [], LA, "safeguarding",
                                                     MASH),
    "school-not-in-the-copy-falls-back-to-la": Case("notice", "dsl", None, LA, "safeguarding",
                                                    MASH),
    "la-with-no-contacts-goes-to-the-desk": Case("notice", "safeguarding", None, [],
                                                 "service_desk", (DESK,)),
    "la-with-no-one-in-the-role-goes-to-the-desk": Case(
        "review_overdue", "review", None, [contact("officer", "o@la.gov")], "service_desk",
        (DESK,)),
    "contact-without-an-address-is-nobody": Case(
        "notice", "safeguarding", None, [{"role": "safeguarding", "email": ""}],
        "service_desk", (DESK,)),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_choose_recipients(case: Case) -> None:
    chosen = choose_recipients(case.kind, recipient_role=case.role, school_contacts=case.school,
                               la_contacts=case.la, service_desk=DESK)
    assert chosen == Recipients(case.to_role, list(case.to))


@dataclass(frozen=True)
class HandOn:
    failed: Recipients
    school: list[dict[str, Any]] | None
    la: list[dict[str, Any]] | None
    to: Recipients | None


HAND_ON = {
    "schools-mail-goes-to-la-safeguarding": HandOn(
        Recipients("dsl", ["dsl@oak.sch"]), SCHOOL, LA, Recipients("safeguarding", list(MASH))),
    "deputys-mail-goes-to-la-safeguarding": HandOn(
        Recipients("deputy_dsl", ["deputy@oak.sch"]), SCHOOL, LA,
        Recipients("safeguarding", list(MASH))),
    "safeguardings-mail-goes-to-the-duty-manager": HandOn(
        Recipients("safeguarding", list(MASH)), None, LA,
        Recipients("duty_manager", ["duty@la.gov"])),
    "safeguarding-with-no-duty-manager-goes-to-the-desk": HandOn(
        Recipients("safeguarding", list(MASH)), None, SAFEGUARDING_ONLY,
        Recipients("service_desk", [DESK])),
    "review-contacts-mail-goes-to-the-duty-manager": HandOn(
        Recipients("review", ["reviews@la.gov"]), None, LA,
        Recipients("duty_manager", ["duty@la.gov"])),
    "duty-managers-mail-goes-to-the-desk": HandOn(
        Recipients("duty_manager", ["duty@la.gov"]), None, LA,
        Recipients("service_desk", [DESK])),
    # a duty-manager mail that fell back to safeguarding is recorded as safeguarding's: its
    # hand-on must not go round to the same failing addresses
    "never-back-to-the-addresses-that-failed": HandOn(
        Recipients("safeguarding", list(MASH)), None,
        [*SAFEGUARDING_ONLY, contact("duty_manager", "mash@la.gov")],
        Recipients("service_desk", [DESK])),
    "school-in-an-unknown-la-goes-to-the-desk": HandOn(
        Recipients("dsl", ["dsl@oak.sch"]), DSL_ONLY, None, Recipients("service_desk", [DESK])),
    "the-desks-own-mail-goes-to-nobody": HandOn(
        Recipients("service_desk", [DESK]), SCHOOL, LA, None),
    "an-old-row-without-a-role-still-goes-to-the-la": HandOn(
        Recipients("", ["dsl@oak.sch"]), SCHOOL, LA, Recipients("safeguarding", list(MASH))),
}


@pytest.mark.parametrize("case", HAND_ON.values(), ids=HAND_ON.keys())
def test_hand_on_recipients(case: HandOn) -> None:
    assert hand_on_recipients(case.failed, school_contacts=case.school, la_contacts=case.la,
                              service_desk=DESK) == case.to


def test_recipients_are_kept_with_their_role_and_old_rows_read_back() -> None:
    chosen = Recipients("deputy_dsl", ["deputy@oak.sch"])
    assert Recipients.from_json(chosen.as_json()) == chosen
    assert Recipients.from_json(["a@b.test"]) == Recipients("", ["a@b.test"])
