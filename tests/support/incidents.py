"""Example incident bodies, as a police system would post them."""

from __future__ import annotations

import secrets
from typing import Any


def incident_body(
    force: str = "WMP", reference: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid `POST /v1/incidents` body with one child."""
    body: dict[str, Any] = {
        "force_code": force,
        "incident_reference": reference or f"{force}-{secrets.token_hex(6)}",
        "occurred_at": "2026-11-21T22:40:00+00:00",
        "incident_type": "domestic_abuse",
        "summary": "Verbal argument between adults; child present in the home.",
        "children": [
            {
                "given_name": "Amelia", "family_name": "Khan", "date_of_birth": "2016-03-02",
                "gender": "F",
                "address": {"line1": "12 Oak Road", "town": "Dudley", "postcode": "DY1 2AB"},
                "upn": "A123456789012",
                "school_hint": {"urn": "103456", "name": "Oak Road Primary"},
                "present_at_incident": True,
                "voice_of_child": "Said she was scared and hid upstairs.",
            }
        ],
    }
    body.update(overrides)
    return body
