"""Who an e-mail goes to, as a table of fixed cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from services.notifier.channels import EmailKind
from services.notifier.recipients import Recipients, choose_recipients


def contact(role: str, email: str) -> dict[str, Any]:
    return {"role": role, "email": email, "name": email.split("@")[0]}


SCHOOL = [contact("dsl", "dsl@oak.sch"), contact("dsl", "dsl2@oak.sch"),
          contact("deputy_dsl", "deputy@oak.sch"), contact("holiday_cover", "cover@oak.sch")]
NO_COVER = [c for c in SCHOOL if c["role"] != "holiday_cover"]
NO_DEPUTY = [c for c in SCHOOL if c["role"] != "deputy_dsl"]
LA = [contact("safeguarding", "mash@la.gov"), contact("officer", "officer@la.gov")]


@dataclass(frozen=True)
class Case:
    kind: EmailKind
    role: str
    school: list[dict[str, Any]] | None
    la: list[dict[str, Any]] | None
    to_role: str
    to: tuple[str, ...]


CASES = {
    "notice-dsl": Case("notice", "dsl", SCHOOL, LA, "dsl", ("dsl@oak.sch", "dsl2@oak.sch")),
    "retraction-dsl": Case("retraction", "dsl", SCHOOL, LA, "dsl",
                           ("dsl@oak.sch", "dsl2@oak.sch")),
    "notice-holiday-cover": Case("notice", "holiday_cover", SCHOOL, LA, "holiday_cover",
                                 ("cover@oak.sch",)),
    "holiday-cover-names-nobody-falls-back-to-dsl": Case(
        "notice", "holiday_cover", NO_COVER, LA, "holiday_cover",
        ("dsl@oak.sch", "dsl2@oak.sch")),
    "escalation-deputy": Case("escalation_deputy", "dsl", SCHOOL, LA, "deputy_dsl",
                              ("deputy@oak.sch",)),
    "escalation-deputy-none-named": Case("escalation_deputy", "dsl", NO_DEPUTY, LA,
                                         "deputy_dsl", ()),
    "escalation-la-goes-to-la-safeguarding": Case("escalation_la", "dsl", SCHOOL, LA,
                                                  "safeguarding", ("mash@la.gov",)),
    "escalation-la-unknown-la": Case("escalation_la", "dsl", SCHOOL, None, "safeguarding", ()),
    "la-notice-no-school": Case("notice", "safeguarding", None, LA, "safeguarding",
                                ("mash@la.gov",)),
    "la-retraction-no-school": Case("retraction", "safeguarding", None, LA, "safeguarding",
                                    ("mash@la.gov",)),
    "school-and-la-unknown": Case("notice", "safeguarding", None, None, "safeguarding", ()),
    "school-with-no-contacts": Case("notice", "dsl", [], LA, "dsl", ()),
    "la-with-no-contacts": Case("notice", "safeguarding", None, [], "safeguarding", ()),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_choose_recipients(case: Case) -> None:
    chosen = choose_recipients(case.kind, recipient_role=case.role,
                               school_contacts=case.school, la_contacts=case.la)
    assert chosen == Recipients(case.to_role, list(case.to))
