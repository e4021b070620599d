"""Configuration problems that would leave a child with nobody told.

Each service that owns configuration lists its own (the matcher its registry, ingest its
forces); `daybreak doctor` and `GET /v1/admin/readiness` print them one line each.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReadinessProblem:
    """One problem: a stable code, what it is about, and a one-line message (no child data)."""

    code: str  # e.g. "la_no_safeguarding_contact"
    subject: str  # "la:<code>", "school:<urn>" or "force:<code>"
    message: str

    def line(self) -> str:
        """The problem as `daybreak doctor` prints it."""
        return f"{self.subject}: {self.message} [{self.code}]"

    def as_dict(self) -> dict[str, str]:
        """The problem as the readiness endpoint returns it."""
        return {"code": self.code, "subject": self.subject, "message": self.message}
