"""The sealed wire form of an event: each value at one of its payload type's `sealed_paths` is
replaced by a sealed token ('dk1.<period>.<base64url>', services/common/crypto.py) bound to the
event and the value's place in it, AAD '<event_id>:<path>' (e.g. '…:incident.children.2');
everything else (ids, codes, URNs, LA codes, times, the incident type) stays clear. A value of
null stays null. A consumer opens what is sealed and reads a clear value as it always did (an
event written before sealing)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from schemas.envelope import Envelope, EventPayload, RawEnvelope

# the period: a month, or a school roll's key ('roll-YYYY', services/common/crypto.py)
SEALED_TOKEN = re.compile(r"dk1\.(\d{4}-\d{2}|roll-\d{4})\.([A-Za-z0-9_-]+)")
Registry = Mapping[tuple[str, int], type[EventPayload]]


class Sealer(Protocol):
    """What seals and opens one value (services/common/crypto.Keyring)."""

    def seal(self, value: Any, *, aad: str, at: datetime) -> str: ...

    def open(self, token: str, *, aad: str) -> Any: ...


class SealedWithoutKeys(ValueError):
    """A sealed value reached a process that holds no keystore."""


def aad_for(event_id: uuid.UUID | str, path: str) -> str:
    """The AAD that binds a sealed value to its event and its place in the payload."""
    return f"{event_id}:{path}"


def is_token(value: object) -> bool:
    """Whether a wire value is a sealed token (by its shape)."""
    return isinstance(value, str) and SEALED_TOKEN.fullmatch(value) is not None


def seal_payload(payload: dict[str, Any], paths: Iterable[str], *, event_id: uuid.UUID | str,
                 at: datetime, sealer: Sealer) -> dict[str, Any]:
    """A copy of a payload's JSON with the values at `paths` sealed."""
    def seal(value: Any, path: str) -> Any:
        return None if value is None else sealer.seal(value, aad=aad_for(event_id, path), at=at)

    return _rewrite_all(payload, paths, seal)


def open_payload(payload: dict[str, Any], paths: Iterable[str], *,
                 event_id: uuid.UUID | str, sealer: Sealer | None) -> dict[str, Any]:
    """A copy of a payload's JSON with its sealed values opened (clear ones kept as they are)."""
    def open_(value: Any, path: str) -> Any:
        if not is_token(value):
            return value
        if sealer is None:
            raise SealedWithoutKeys("a sealed event reached a process without a keystore")
        return sealer.open(value, aad=aad_for(event_id, path))

    return _rewrite_all(payload, paths, open_)


def sealed_envelope_bytes(envelope: Envelope[Any], sealer: Sealer) -> bytes:
    """An envelope's wire bytes with its child data sealed (as `to_bytes`, when it has none)."""
    paths = type(envelope.payload).sealed_paths
    if not paths:
        return envelope.to_bytes()
    data = envelope.model_dump(mode="json")
    data["payload"] = seal_payload(data["payload"], paths, event_id=envelope.event_id,
                                   at=envelope.occurred_at, sealer=sealer)
    return _dumps(data)


def seal_wire(value: bytes, registry: Registry, sealer: Sealer) -> bytes:
    """Wire bytes of an envelope with its child data sealed; other bytes unchanged."""
    try:
        data = json.loads(value)
        paths = registry[(data["type"], data["version"])].sealed_paths
    except (ValueError, TypeError, KeyError):
        return value
    if not paths:
        return value
    raw = RawEnvelope.model_validate(data)  # the same checks a consumer makes, before sealing
    data["payload"] = seal_payload(raw.payload, paths, event_id=raw.event_id,
                                   at=raw.occurred_at, sealer=sealer)
    return _dumps(data)


def opened_raw(raw: RawEnvelope, registry: Registry, sealer: Sealer | None) -> RawEnvelope:
    """A raw envelope with its sealed child data opened, ready for `typed_envelope`."""
    payload_cls = registry.get((raw.type, raw.version))
    if payload_cls is None or not payload_cls.sealed_paths:
        return raw
    payload = open_payload(raw.payload, payload_cls.sealed_paths, event_id=raw.event_id,
                           sealer=sealer)
    return raw.model_copy(update={"payload": payload})


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _rewrite_all(payload: dict[str, Any], paths: Iterable[str],
                 change: Callable[[Any, str], Any]) -> dict[str, Any]:
    out: Any = payload
    for path in paths:
        out = _rewrite(out, path.split("."), "", change)
    result: dict[str, Any] = out
    return result


def _rewrite(node: Any, parts: list[str], at: str, change: Callable[[Any, str], Any]) -> Any:
    """`node` with `change(value, concrete_path)` applied where `parts` lead; copies only the
    containers on the way, leaves the caller's JSON untouched."""
    if not parts:
        return change(node, at)
    head, rest = parts[0], parts[1:]
    if head == "*":
        if not isinstance(node, list):
            return node
        return [_rewrite(item, rest, f"{at}.{i}", change) for i, item in enumerate(node)]
    if not isinstance(node, dict) or head not in node:
        return node
    return node | {head: _rewrite(node[head], rest, f"{at}.{head}" if at else head, change)}
