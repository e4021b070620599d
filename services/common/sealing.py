"""Child data on the wire, per process: the engine of a service that holds the keystore
(ingest, matcher, notifier) carries its ChildSealing, so the outbox seals what it stages and
the consumer opens what it parses, and use-case code never sees a sealed value."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.envelope import Envelope, RawEnvelope, typed_envelope
from schemas.registry import EVENT_TYPES
from schemas.sealed import Sealer, opened_raw, seal_wire, sealed_envelope_bytes
from services.common.crypto import Keyring, SealError
from services.common.settings import MissingSetting, ServiceName, Settings

# the services given DAYBREAK_KEYSTORE_DIR and DAYBREAK_KEK_FILE; audit and identity never are
KEY_HOLDERS: frozenset[ServiceName] = frozenset({"ingest", "matcher", "notifier"})
SEALING_OPTION = "daybreak_child_sealing"  # the engine execution option that carries it


class ChildSealing:
    """Opens sealed child data with this process's keyring and seals new events with it,
    unless DAYBREAK_SEAL_CHILD_DATA is off (the bench's baseline: new events go clear)."""

    def __init__(self, settings: Settings | None, *, keyring: Keyring | None = None,
                 seal_new: bool = True, shreds: bool = False) -> None:
        self._settings = settings
        self._keyring = keyring
        self._lock = threading.Lock()
        self.seal_new = seal_new
        self.shreds = shreds  # DAYBREAK_SHRED_EXPIRED_KEYS: read by the retention owner only

    @classmethod
    def from_settings(cls, settings: Settings) -> ChildSealing:
        """The process's sealing; the keyring is read on first use (or by `check`)."""
        return cls(settings, seal_new=settings.seal_child_data,
                   shreds=settings.shred_expired_keys)

    @property
    def keyring(self) -> Keyring:
        """The keyring (MissingSetting when the keystore is not configured)."""
        with self._lock:
            if self._keyring is None:
                if self._settings is None:
                    raise SealError("child data must be sealed and this process has no keystore")
                self._keyring = Keyring.from_settings(self._settings)
            return self._keyring

    def check(self) -> ChildSealing:
        """Fail now, at start-up, if the keystore or the KEK cannot be read."""
        _ = self.keyring
        return self

    def seal(self, value: Any, *, aad: str, at: datetime) -> str:
        """Seal one value with the keyring (read now if not yet)."""
        return self.keyring.seal(value, aad=aad, at=at)

    def seal_roll(self, value: Any, *, aad: str, at: datetime) -> str:
        """Seal one value of a school roll under the roll key of `at`'s year."""
        return self.keyring.seal_roll(value, aad=aad, at=at)

    def lookup_hash(self, value: str) -> str:
        """The keyed hash SQL looks a sealed value up by (Keyring.lookup_hash)."""
        return self.keyring.lookup_hash(value)

    def open(self, token: str, *, aad: str) -> Any:
        """Open one sealed value with the keyring."""
        return self.keyring.open(token, aad=aad)

    def envelope_bytes(self, envelope: Envelope[Any]) -> bytes:
        """The envelope's wire bytes, its child data sealed."""
        if not self.seal_new:
            return envelope.to_bytes()
        return sealed_envelope_bytes(envelope, self)

    def wire_bytes(self, value: bytes) -> bytes:
        """Serialised envelope bytes with their child data sealed (other bytes unchanged)."""
        return seal_wire(value, EVENT_TYPES, self) if self.seal_new else value

    def opened(self, raw: RawEnvelope) -> RawEnvelope:
        """A parsed envelope with its sealed child data opened (a clear one as it is)."""
        payload_cls = EVENT_TYPES.get((raw.type, raw.version))
        if payload_cls is None or not payload_cls.sealed_paths:
            return raw
        return opened_raw(raw, EVENT_TYPES, self._opener())

    def parse(self, value: bytes) -> Envelope[Any]:
        """Wire bytes as a typed envelope, their child data opened."""
        return typed_envelope(self.opened(RawEnvelope.model_validate_json(value)), EVENT_TYPES)

    def opened_json(self, value: bytes) -> dict[str, Any]:
        """Wire bytes as JSON, their child data opened (what the producer serialised)."""
        opened: dict[str, Any] = self.opened(
            RawEnvelope.model_validate_json(value)).model_dump(mode="json")
        return opened

    def _opener(self) -> Sealer | None:
        try:
            return self.keyring
        except (SealError, MissingSetting):
            return None  # a clear (pre-sealing) event still opens; a sealed one is refused


# no keystore: events without child data pass, child data is refused rather than sent clear
NO_KEYS = ChildSealing(None)


def with_sealing(engine: AsyncEngine, sealing: ChildSealing) -> AsyncEngine:
    """The engine, carrying `sealing` to every connection it gives."""
    return engine.execution_options(**{SEALING_OPTION: sealing})


def sealing_of(bound: AsyncConnection | AsyncEngine) -> ChildSealing:
    """The sealing an engine (or a connection of it) carries; NO_KEYS when none."""
    options = (bound.sync_connection.get_execution_options()
               if isinstance(bound, AsyncConnection) and bound.sync_connection is not None
               else bound.sync_engine.get_execution_options())
    found = options.get(SEALING_OPTION)
    return found if isinstance(found, ChildSealing) else NO_KEYS
