"""Who an e-mail goes to: a pure rule over the school's and the LA's contacts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.notifier.channels import EmailKind

Contacts = Sequence[Mapping[str, Any]]  # each {"role": ..., "email": ..., ...}
_ROLE_OF_KIND: dict[EmailKind, str] = {"escalation_deputy": "deputy_dsl",
                                       "escalation_la": "safeguarding"}


@dataclass(frozen=True, slots=True)
class Recipients:
    """The contact role an e-mail is for and the addresses it goes to (maybe none)."""

    role: str
    addresses: list[str]


def choose_recipients(
    kind: EmailKind, *, recipient_role: str, school_contacts: Contacts | None,
    la_contacts: Contacts | None,
) -> Recipients:
    """Escalations go to the deputy DSL, then the LA's safeguarding contact; anything else
    to the notification's role: at the school when there is one, else at the LA.

    `None` contacts mean the school (or LA) is not in the notifier's copy. Holiday cover
    that names nobody falls back to the school's DSLs.
    """
    role = _ROLE_OF_KIND.get(kind, recipient_role)
    at_la = la_contacts is not None and (school_contacts is None or role == "safeguarding")
    people = la_contacts if at_la else school_contacts
    addresses = _with_role(people or [], role)
    if not addresses and role == "holiday_cover" and school_contacts is not None:
        addresses = _with_role(school_contacts, "dsl")
    return Recipients(role, addresses)


def _with_role(people: Contacts, role: str) -> list[str]:
    return [c["email"] for c in people if c.get("role") == role]
