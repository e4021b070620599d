"""Who an e-mail goes to: a pure rule over the school's and the LA's contacts.

Nobody is ever left out: each role falls back along its chain (a school's roles to the LA's
safeguarding contact, the LA's other roles to safeguarding) and, when nobody in the chain
is known, to the service desk. The e-mail records the role that actually received it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from services.notifier.channels import EmailKind

Contacts = Sequence[Mapping[str, Any]]  # each {"role": ..., "email": ..., ...}
SERVICE_DESK: Final = "service_desk"
SCHOOL_ROLES: Final = frozenset({"dsl", "deputy_dsl", "holiday_cover"})
_ROLE_OF_KIND: dict[EmailKind, str] = {
    "escalation_deputy": "deputy_dsl", "escalation_la": "safeguarding",
    "escalation_duty": "duty_manager", "review_waiting": "review",
    "review_overdue": "duty_manager"}
# a mail that failed for good goes to the next in line (the service desk is always last)
_HANDED_ON_TO: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(SCHOOL_ROLES, ("safeguarding", "duty_manager")),
    "safeguarding": ("duty_manager",), "review": ("duty_manager", "safeguarding"),
    "duty_manager": (), SERVICE_DESK: ()}
Place = Literal["school", "la"]


@dataclass(frozen=True, slots=True)
class Recipients:
    """The contact role that receives an e-mail and its addresses (never none)."""

    role: str
    addresses: list[str]

    def as_json(self) -> dict[str, Any]:
        """How an e-mail row keeps them (`notifier_emails.to_addrs`)."""
        return {"role": self.role, "to": self.addresses}

    @classmethod
    def from_json(cls, value: Any) -> Recipients:
        """Read `to_addrs` back; rows staged before roles were kept are a bare list."""
        if isinstance(value, Mapping):
            return cls(str(value.get("role", "")), list(value.get("to", [])))
        return cls("", list(value or []))


def choose_recipients(
    kind: EmailKind, *, recipient_role: str, school_contacts: Contacts | None,
    la_contacts: Contacts | None, service_desk: str,
) -> Recipients:
    """Escalations go to the deputy DSL, the LA's safeguarding contact, then its duty manager;
    review mail to the LA's review contact (overdue: the duty manager); anything else to the
    notification's role. Each falls back along its chain, and finally to the service desk.

    `None` contacts mean the school (or LA) is not in the notifier's copy.
    """
    role = _ROLE_OF_KIND.get(kind, recipient_role)
    return _first_known(_chain(role), school_contacts=school_contacts, la_contacts=la_contacts,
                        service_desk=service_desk, exclude=())


def hand_on_recipients(
    failed: Recipients, *, school_contacts: Contacts | None, la_contacts: Contacts | None,
    service_desk: str,
) -> Recipients | None:
    """Who is told when mail to `failed` died: the next in line, never the addresses that
    failed; None when the service desk itself could not be reached."""
    if failed.role == SERVICE_DESK or service_desk in failed.addresses:
        return None
    following = _HANDED_ON_TO.get(failed.role, ("safeguarding", "duty_manager"))
    return _first_known([("la", r) for r in following], school_contacts=school_contacts,
                        la_contacts=la_contacts, service_desk=service_desk,
                        exclude=failed.addresses)


def _chain(role: str) -> list[tuple[Place, str]]:
    if role == SERVICE_DESK:
        return []
    if role in SCHOOL_ROLES:
        # holiday cover that names nobody falls back to the school's DSLs
        at_school = [role, "dsl"] if role == "holiday_cover" else [role]
        return [*(("school", r) for r in at_school), ("la", "safeguarding")]
    return [("la", r) for r in dict.fromkeys((role, "safeguarding"))]


def _first_known(
    chain: Sequence[tuple[Place, str]], *, school_contacts: Contacts | None,
    la_contacts: Contacts | None, service_desk: str, exclude: Collection[str],
) -> Recipients:
    for place, role in chain:
        people = school_contacts if place == "school" else la_contacts
        addresses = [a for a in _with_role(people or [], role) if a not in exclude]
        if addresses:
            return Recipients(role, addresses)
    return Recipients(SERVICE_DESK, [service_desk])


def _with_role(people: Contacts, role: str) -> list[str]:
    return [c["email"] for c in people if c.get("role") == role and c.get("email")]
