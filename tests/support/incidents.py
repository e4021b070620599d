"""Example incident bodies, as a police system would post them, and what reaches Kafka."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from schemas import topics
from services.common.db import standalone_uow
from services.common.sealing import ChildSealing
from services.common.settings import Settings
from services.ingest.models import forces
from tests.support.ids import next_tag
from tests.support.kafka import read_topic

# the LA a test force's children go to when the report does not tell their LA (no test's
# registry has it unless the test seeds it): ingest refuses a force without one
DEFAULT_LA = "FALLBACK"


async def register_force(settings: Settings, force: str, la_code: str | None = DEFAULT_LA
                         ) -> None:
    """Make `force` ready to report, as an admin's `PUT /v1/forces` would: its profile names
    `la_code` as its default LA (a profile the test set before keeps its other fields)."""
    async with standalone_uow(settings, "ingest") as uow:
        stmt = insert(forces).values(force_code=force, name=f"Force {force}",
                                     default_la_code=la_code)
        await uow.conn.execute(stmt.on_conflict_do_update(
            index_elements=["force_code"],
            set_={"default_la_code": stmt.excluded.default_la_code, "updated_at": func.now()}))
        await uow.commit()


def incident_body(
    force: str = "WMP", reference: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid `POST /v1/incidents` body with one child."""
    body: dict[str, Any] = {
        "force_code": force,
        "incident_reference": reference or f"{force}-{next_tag()}",
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


async def incidents_on_topic(settings: Settings, at_least: int = 0) -> list[dict[str, Any]]:
    """The events on this test's incidents topic, each with its Kafka key as `_key`, their
    child data opened with the settings' keyring (as the matcher would read them)."""
    records = await read_topic(settings.kafka(), settings.topic(topics.INCIDENTS),
                               at_least=at_least, timeout_s=5 if at_least else 1)
    sealing = ChildSealing.from_settings(settings)
    return [sealing.opened_json(r.value) | {"_key": r.key.decode()} for r in records]
