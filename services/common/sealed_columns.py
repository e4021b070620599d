"""Child data sealed at rest in database columns (services/common/crypto.py `Keyring`).

A JSONB column that holds child data keeps its type and holds ``{"sealed": "dk1..."}``: the
value sealed whole, or, for a document SQL still reads inside, the keys named clear beside
the sealed rest (an incident's ids, force, type and times stay clear, so retention's SQL
stub of KEPT_INCIDENT_KEYS and every `row.incident["force_code"]` work unchanged). The AAD
is the table, the row's primary key and the column (`aad`), so a value copied to another
row or column does not open. Rows written before sealing are clear and read as they are;
``daybreak reseal`` seals them. The keyring is the one the connection's engine carries
(services/common/sealing.py); where DAYBREAK_SEAL_CHILD_DATA is off (the e2e bench's
baseline) new values are written clear.

Opening is for the code that then records the disclosure before anything is shown; a
period's data key shredded by retention makes its rows unreadable (`KeyShredded`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from services.common.crypto import KeyShredded, SealError, is_sealed
from services.common.problems import Problem
from services.common.retention import KEPT_INCIDENT_KEYS, PURGED_MARK
from services.common.sealing import ChildSealing

SEALED = "sealed"
# what of an incident document stays clear: ids, codes, type, times, which fields the force
# discloses (what SQL and routing read); the summary is sealed
INCIDENT_CLEAR = (*KEPT_INCIDENT_KEYS, "disclosure_fields", "incident_reference", PURGED_MARK)


def aad(table: str, *key: object, column: str) -> str:
    """Where a sealed value belongs: 'schema.table:<primary key parts>:column'."""
    return ":".join([table, *(str(part) for part in key), column])


def seal(sealing: ChildSealing, value: Any, *, aad: str, at: datetime,
         clear: Collection[str] = ()) -> Any:
    """What the column stores for `value`: ``{"sealed": token}``, plus the keys of a
    document named in `clear` left beside it; `value` itself when sealing is off or there
    is nothing to seal (already sealed, None, an empty document)."""
    if not sealing.seal_new or value is None or is_sealed_column(value):
        return value
    if isinstance(value, Mapping):
        kept = {k: v for k, v in value.items() if k in clear}
        rest = {k: v for k, v in value.items() if k not in clear}
        if not rest:
            return dict(value)
        return kept | {SEALED: sealing.seal(rest, aad=aad, at=at)}
    if value == [] or value == "":
        return value
    return {SEALED: sealing.seal(value, aad=aad, at=at)}


def is_sealed_column(stored: Any) -> bool:
    """Whether a stored column value holds a sealed part."""
    return isinstance(stored, Mapping) and is_sealed(stored.get(SEALED))


def open_column(sealing: ChildSealing, stored: Any, *, aad: str) -> Any:
    """The value `seal` stored (a clear row, written before sealing, as it is); `KeyShredded`
    past retention, `SealError` when tampered, moved or with no keystore."""
    if not is_sealed_column(stored):
        return stored
    opened = sealing.open(stored[SEALED], aad=aad)
    clear = {k: v for k, v in stored.items() if k != SEALED}
    if not clear:
        return opened
    if not isinstance(opened, Mapping):
        raise SealError("a sealed document's sealed part is not a document")
    return clear | dict(opened)


def shredded_problem() -> Problem:
    """What a reader is told of content whose data key retention shredded."""
    return Problem(410, "Gone", "This content was erased under the retention policy.")



def seal_at(sealing: ChildSealing, value: Any, *, aad: str, written_at: datetime, now: datetime,
            clear: Collection[str] = ()) -> Any:
    """`seal` for a row stored clear before sealing: under the month it was written, so its
    month's shredding covers it, or under `now`'s when that month is shredded already."""
    try:
        return seal(sealing, value, aad=aad, at=written_at, clear=clear)
    except KeyShredded:
        return seal(sealing, value, aad=aad, at=now, clear=clear)


def seal_text(sealing: ChildSealing, text: str | None, *, aad: str, at: datetime) -> str | None:
    """What a TEXT column of free text (a school's words, which may name the child) stores:
    the sealed token itself; None or "" as they are."""
    if not text or not sealing.seal_new or is_sealed(text):
        return text
    return sealing.seal(text, aad=aad, at=at)


def open_text(sealing: ChildSealing, stored: str | None, *, aad: str) -> str | None:
    """The text `seal_text` stored (clear text written before sealing as it is)."""
    if not is_sealed(stored):
        return stored
    opened = sealing.open(str(stored), aad=aad)
    return str(opened)
