"""Witness cosignatures of the audit log's tree heads, in the C2SP formats.

A signed tree head is presented to witnesses as a C2SP tlog-checkpoint body: the log's
origin line (`daybreak/audit/<key id of the log's signing key>`), the tree size in decimal
and the root hash in base64, each line ending in a newline. A cosignature is a C2SP
tlog-cosignature/v1 Ed25519 note signature over it:

    message   = "cosignature/v1\n" "time <POSIX seconds>\n" ‖ checkpoint body
    key id    = SHA-256(<witness name> ‖ "\n" ‖ 0x04 ‖ 32-byte public key)[:4]
    signature line = "— <witness name> " base64(key id ‖ u64 big-endian time ‖ signature)

and says that, as of that time, this is the largest tree head of the log the witness has
seen, and that it is consistent with every head the witness cosigned before. Verifiers are
given witnesses as C2SP signed-note verifier keys, `<name>+<hex key id>+base64(0x04 ‖ key)`
(`daybreak audit witness-keygen` prints one), and ignore signature lines that match none.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from services.audit.tree_head import key_id, public_key_raw

COSIGNATURE_HEADER = b"cosignature/v1\n"
_ED25519 = b"\x04"
_DASH = "\u2014"
_NAME = re.compile(r"[^\s+]{1,200}")
_MAX_TIME = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One tree head of the log as a witness sees it: origin, size and root."""

    origin: str
    tree_size: int
    root_hash: str  # hex

    def body(self) -> bytes:
        """The C2SP checkpoint note body (origin, size, base64 root; newline-terminated)."""
        root = base64.b64encode(bytes.fromhex(self.root_hash)).decode("ascii")
        return f"{self.origin}\n{self.tree_size}\n{root}\n".encode()


@dataclass(frozen=True, slots=True)
class Cosigner:
    """A witness as verifiers know it: its name and public key."""

    name: str
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        """The C2SP Ed25519 cosignature key id (4 bytes)."""
        return cosigner_key_id(self.name, self.public_key)

    def vkey(self) -> str:
        """The C2SP signed-note verifier key for this witness."""
        raw = base64.b64encode(_ED25519 + public_key_raw(self.public_key)).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{raw}"


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A parsed note signature line: who, their key id, when, and the signature."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes


def log_origin(log_public_key: Ed25519PublicKey) -> str:
    """The origin line of the audit log signed with this key."""
    return f"daybreak/audit/{key_id(log_public_key)}"


def cosigner_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """SHA-256(name ‖ '\\n' ‖ 0x04 ‖ public key)[:4], as tlog-cosignature/v1 defines it."""
    material = name.encode() + b"\n" + _ED25519 + public_key_raw(public_key)
    return hashlib.sha256(material).digest()[:4]


def signed_message(checkpoint: Checkpoint, timestamp: int) -> bytes:
    """The exact bytes a witness signs for a checkpoint at a time."""
    if not 0 <= timestamp <= _MAX_TIME:
        raise ValueError("cosignature time out of range")
    return COSIGNATURE_HEADER + f"time {timestamp}\n".encode() + checkpoint.body()


def cosign(checkpoint: Checkpoint, *, name: str, private_key: Ed25519PrivateKey,
           timestamp: int) -> str:
    """The note signature line of a cosignature over `checkpoint`."""
    if not _NAME.fullmatch(name):
        raise ValueError("a witness name is one word without '+'")
    signature = private_key.sign(signed_message(checkpoint, timestamp))
    kid = cosigner_key_id(name, private_key.public_key())
    blob = base64.b64encode(kid + struct.pack(">Q", timestamp) + signature).decode("ascii")
    return f"{_DASH} {name} {blob}"


def parse_cosignature(line: str) -> Cosignature:
    """Parse a note signature line carrying an Ed25519 timestamped signature."""
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != _DASH or not _NAME.fullmatch(parts[1]):
        raise ValueError("not a note signature line")
    try:
        blob = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("note signature is not base64") from exc
    if len(blob) != 4 + 8 + 64:
        raise ValueError("not an Ed25519 cosignature")
    (timestamp,) = struct.unpack(">Q", blob[4:12])
    return Cosignature(parts[1], blob[:4], timestamp, blob[12:])


def verify_cosignature(checkpoint: Checkpoint, line: str, cosigner: Cosigner) -> bool:
    """Whether the line is this witness's valid cosignature over exactly this checkpoint."""
    try:
        parsed = parse_cosignature(line)
        if parsed.name != cosigner.name or parsed.key_id != cosigner.key_id:
            return False
        cosigner.public_key.verify(parsed.signature,
                                   signed_message(checkpoint, parsed.timestamp))
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_vkey(text: str) -> Cosigner:
    """A witness from its C2SP verifier key `<name>+<hex key id>+base64(0x04 ‖ key)`."""
    parts = text.strip().split("+", 2)  # base64 may hold "+" too
    if len(parts) != 3 or not _NAME.fullmatch(parts[0]):
        raise ValueError("a witness key is <name>+<hex key id>+<base64 key>")
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("witness key is not base64") from exc
    if len(raw) != 33 or raw[:1] != _ED25519:
        raise ValueError("witness key is not an Ed25519 cosignature key")
    cosigner = Cosigner(parts[0], Ed25519PublicKey.from_public_bytes(raw[1:]))
    if cosigner.key_id.hex() != parts[1].lower():
        raise ValueError("witness key id does not match its name and key")
    return cosigner
