"""`daybreak audit witness`: an independent process that cosigns the audit log's tree heads.

The witness holds its own Ed25519 key (`DAYBREAK_WITNESS_SIGNING_KEY`, never the log's) and
its own state file, the last head it cosigned. It reads signed heads from `audit-heads.v1`
(from the start, without a consumer group: its state, not an offset, says what it has
seen), checks each new head's signature with the log's public key and its consistency with
the last head it cosigned, using the RFC 9162 proof the audit API serves
(`GET /v1/audit/consistency`) checked against the roots it holds itself, and only then
saves the new head as its state and publishes a C2SP cosignature (`cosign.py`) to
`audit-cosignatures.v1`. A head inconsistent with the last one (a forked or rewritten log)
is refused: nothing is cosigned and the state stays, so no later head of the fork is
cosigned either. The cosignatures go to a topic of their own rather than a file because the
witness shares no disk or database with the audit service (it may run on another host, for
another organisation); its principal may only write that topic and read the heads, and the
topic is kept for ever, like the heads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import httpx
from aiokafka import AIOKafkaConsumer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, SecretStr

from schemas.audit import AUDIT_EVENT_TYPES, TreeHeadCosigned, TreeHeadSigned
from schemas.envelope import parse_envelope, wrap
from schemas.topics import AUDIT_COSIGNATURES, AUDIT_HEADS
from services.audit.cosign import Checkpoint, Cosigner, cosign, log_origin
from services.audit.merkle import verify_consistency
from services.audit.tree_head import (
    TreeHead,
    key_id,
    load_private_key,
    load_public_key,
    verify_tree_head,
)
from services.common.kafka import ensure_topics, make_producer, partitions_of
from services.common.settings import Settings

log = logging.getLogger(__name__)
_COSIGNATURE_IDS = uuid.UUID("0b6f7a52-7c1e-4f4e-8f0b-2a3c5d9e1f47")


class WitnessSettings(Settings):
    """`DAYBREAK_WITNESS_*`: the witness's own key, name and state, where it asks for proofs."""

    witness_signing_key: SecretStr | None = None
    witness_name: str = Field(default="daybreak-witness", pattern=r"^[^\s+]{1,200}$")
    witness_state_file: Path = Path(".daybreak/witness/state.json")
    witness_log_public_key: str | None = None  # the audit log's tree-head key (public half)
    witness_audit_url: str = "http://127.0.0.1:8004"
    witness_audit_token_file: Path | None = None  # an auditor's bearer token, re-read each time
    witness_timeout_s: float = Field(default=10, gt=0)

    def private_key(self) -> Ed25519PrivateKey:
        """The witness's own signing key."""
        if self.witness_signing_key is None:
            raise ValueError("DAYBREAK_WITNESS_SIGNING_KEY is required "
                             "(`daybreak audit witness-keygen`)")
        return load_private_key(self.witness_signing_key.get_secret_value())

    def log_public_key(self) -> Ed25519PublicKey:
        """The public key the log signs its tree heads with."""
        if self.witness_log_public_key is None:
            raise ValueError("DAYBREAK_WITNESS_LOG_PUBLIC_KEY is required")
        return load_public_key(self.witness_log_public_key)


@dataclass(frozen=True, slots=True)
class WitnessState:
    """The last head the witness cosigned."""

    origin: str
    tree_size: int
    root_hash: str


def read_state(path: Path) -> WitnessState | None:
    """The saved state, or None before the first cosignature."""
    if not path.exists():
        return None
    item = json.loads(path.read_text())
    return WitnessState(str(item["origin"]), int(item["tree_size"]), str(item["root_hash"]))


def write_state(path: Path, state: WitnessState) -> None:
    """Replace the state file atomically (mode 600), synced before the cosignature leaves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(asdict(state), sort_keys=True))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class Proofs(Protocol):
    """Where the witness gets RFC 9162 consistency proofs between two signed head sizes."""

    async def consistency(self, first: int, second: int) -> list[bytes]: ...


class ApiProofs:
    """Consistency proofs from the audit API (only its `proof` is used, never its roots)."""

    def __init__(self, client: httpx.AsyncClient, token: Callable[[], str | None]) -> None:
        self.client, self.token = client, token

    async def consistency(self, first: int, second: int) -> list[bytes]:
        """GET /v1/audit/consistency?from=first&to=second; ValueError if there is none."""
        token = self.token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.get("/v1/audit/consistency",
                                     params={"from": first, "to": second}, headers=headers)
        if resp.status_code != 200:
            raise ValueError(f"no consistency proof from {first} to {second} "
                             f"(HTTP {resp.status_code})")
        return [bytes.fromhex(p) for p in resp.json()["proof"]]


class Witness:
    """Checks heads one by one and cosigns each new one consistent with its state."""

    def __init__(self, *, name: str, private_key: Ed25519PrivateKey,
                 log_public_key: Ed25519PublicKey, state_file: Path, proofs: Proofs,
                 clock: Callable[[], float] = time.time) -> None:
        self.name, self.private_key = name, private_key
        self.log_key, self.log_key_id = log_public_key, key_id(log_public_key)
        self.origin = log_origin(log_public_key)
        self.state_file, self.proofs, self.clock = state_file, proofs, clock
        self.refused: list[str] = []
        self.observed = 0  # heads read (a test's progress check)

    @property
    def cosigner(self) -> Cosigner:
        """This witness as verifiers configure it."""
        return Cosigner(self.name, self.private_key.public_key())

    def _refuse(self, head: TreeHeadSigned, why: str) -> None:
        reason = f"head at size {head.tree_size} refused: {why}"
        self.refused.append(reason)
        log.error("witness refused a tree head", extra={"tree_size": head.tree_size,
                                                        "reason": why})

    async def observe(self, head: TreeHeadSigned) -> TreeHeadCosigned | None:
        """The cosignature of this head, or None (another log's, old, seen, or refused)."""
        if head.key_id != self.log_key_id:
            return None
        try:
            signature = bytes.fromhex(head.signature)
        except ValueError:
            signature = b""
        tree_head = TreeHead(head.tree_size, head.root_hash, head.signed_at)
        if not verify_tree_head(tree_head, signature, self.log_key):
            self._refuse(head, "the log's signature does not verify")
            return None
        state = await asyncio.to_thread(read_state, self.state_file)
        if state is not None and state.origin != self.origin:
            raise ValueError("the witness state file belongs to another log")
        if state is not None and head.tree_size <= state.tree_size:
            if head.tree_size == state.tree_size and head.root_hash != state.root_hash:
                self._refuse(head, "a different root at the size last cosigned (a fork)")
            return None
        if state is not None and not await self._consistent(state, head):
            return None
        await asyncio.to_thread(write_state, self.state_file,
                                WitnessState(self.origin, head.tree_size, head.root_hash))
        checkpoint = Checkpoint(self.origin, head.tree_size, head.root_hash)
        line = cosign(checkpoint, name=self.name, private_key=self.private_key,
                      timestamp=int(self.clock()))
        return TreeHeadCosigned(origin=self.origin, tree_size=head.tree_size,
                                root_hash=head.root_hash, cosignature=line)

    async def _consistent(self, state: WitnessState, head: TreeHeadSigned) -> bool:
        try:
            proof = await self.proofs.consistency(state.tree_size, head.tree_size)
        except (ValueError, KeyError, TypeError, httpx.HTTPError) as exc:
            self._refuse(head, f"no consistency proof from size {state.tree_size} "
                               f"({type(exc).__name__})")
            return False
        if not verify_consistency(state.tree_size, head.tree_size,
                                  bytes.fromhex(state.root_hash), bytes.fromhex(head.root_hash),
                                  proof):
            self._refuse(head, f"not consistent with the head of size {state.tree_size} "
                               "last cosigned")
            return False
        return True


def cosignature_message(event: TreeHeadCosigned, cosigner: Cosigner) -> tuple[bytes, bytes]:
    """(key, value) of a cosignature on `audit-cosignatures.v1` (keyed by the witness)."""
    event_id = uuid.uuid5(_COSIGNATURE_IDS, f"{event.cosignature}")
    return cosigner.key_id.hex().encode(), wrap(event, event_id=event_id).to_bytes()


def build_witness(settings: WitnessSettings, proofs: Proofs) -> Witness:
    """The witness its settings describe, asking `proofs` for consistency proofs."""
    return Witness(name=settings.witness_name, private_key=settings.private_key(),
                   log_public_key=settings.log_public_key(),
                   state_file=settings.witness_state_file, proofs=proofs)


async def run_witness(settings: WitnessSettings, *, stop: asyncio.Event | None = None) -> None:
    """Follow `audit-heads.v1` and cosign, asking the audit API for proofs, until `stop`."""
    token_file = settings.witness_audit_token_file

    def token() -> str | None:
        return token_file.read_text().strip() if token_file is not None else None

    async with httpx.AsyncClient(base_url=settings.witness_audit_url,
                                 timeout=settings.witness_timeout_s) as client:
        witness = build_witness(settings, ApiProofs(client, token))
        await follow_heads(settings, witness, stop=stop or asyncio.Event())


async def follow_heads(settings: Settings, witness: Witness, *, stop: asyncio.Event,
                       poll_ms: int = 1000) -> None:
    """Read `audit-heads.v1` from its start, cosigning what the witness accepts, until `stop`."""
    kafka = settings.kafka()
    heads_topic = settings.topic(AUDIT_HEADS)
    out_topic = settings.topic(AUDIT_COSIGNATURES)
    async with contextlib.AsyncExitStack() as stack:
        consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False,
                                    auto_offset_reset="earliest",
                                    isolation_level="read_committed")
        producer = make_producer(kafka)
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        await producer.start()
        stack.push_async_callback(producer.stop)
        await ensure_topics(kafka, [out_topic], layout=settings.topic_layout())
        assigned = False
        while not stop.is_set():
            if not assigned:  # until the heads topic exists
                tps = await partitions_of(consumer, [heads_topic])
                if not tps:
                    await asyncio.sleep(poll_ms / 1000)
                    continue
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                assigned = True
            batch = await consumer.getmany(timeout_ms=poll_ms)
            for records in batch.values():
                for record in records:
                    try:
                        envelope = parse_envelope(record.value, AUDIT_EVENT_TYPES)
                    except ValueError:  # not a head: it cannot jam the witness either
                        log.warning("unreadable record on the heads topic",
                                    extra={"offset": record.offset})
                        continue
                    if not isinstance(envelope.payload, TreeHeadSigned):
                        continue
                    witness.observed += 1
                    event = await witness.observe(envelope.payload)
                    if event is not None:
                        key, value = cosignature_message(event, witness.cosigner)
                        await producer.send_and_wait(out_topic, value, key=key)
