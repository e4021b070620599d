"""Ed25519-signed tree heads: the audit log's commitment that outlives the database.

A tree head says "the first `tree_size` entries have Merkle root `root_hash`, as of
`timestamp`". Its signed bytes are a fixed domain tag followed by the canonical JSON of the
three fields, so a signature over a head can never be mistaken for one over anything else.
The private key is held outside the database (settings, from a secret store), so someone
who can rewrite audit rows cannot sign a head for their rewritten history.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from services.audit.chain import canonical_json

TREE_HEAD_DOMAIN = b"daybreak/audit/tree-head/v1\n"
_HEX_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The Merkle root of the first `tree_size` audit entries at a moment in time."""

    tree_size: int
    root_hash: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A tree head and its 64-byte Ed25519 signature."""

    head: TreeHead
    signature: bytes


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A freshly generated signing key and its public half, both as text."""

    private_key: str
    public_key: str


def tree_head_bytes(head: TreeHead) -> bytes:
    """Return the exact bytes that are signed for a tree head."""
    if isinstance(head.tree_size, bool) or not 0 <= head.tree_size < 2**53:
        raise ValueError("tree_size must be a non-negative integer below 2**53")
    if not _HEX_HASH.fullmatch(head.root_hash):
        raise ValueError("root_hash must be 64 lowercase hex digits")
    fields = {"root_hash": head.root_hash, "timestamp": head.timestamp, "tree_size": head.tree_size}
    return TREE_HEAD_DOMAIN + canonical_json(fields)


def sign_tree_head(head: TreeHead, private_key: Ed25519PrivateKey) -> bytes:
    """Sign a tree head; returns the 64-byte Ed25519 signature."""
    return private_key.sign(tree_head_bytes(head))


def verify_tree_head(head: TreeHead, signature: bytes, public_key: Ed25519PublicKey) -> bool:
    """Return whether `signature` is the key holder's signature over exactly this head."""
    try:
        public_key.verify(signature, tree_head_bytes(head))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _decode_raw(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is neither PEM nor base64") from exc
    if len(raw) != 32:
        raise ValueError(f"{what} must be 32 raw bytes, got {len(raw)}")
    return raw


def load_private_key(text: str) -> Ed25519PrivateKey:
    """Load an Ed25519 private key from PKCS#8 PEM or base64 of the 32-byte seed."""
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        return Ed25519PrivateKey.from_private_bytes(_decode_raw(text, "private key"))
    key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("PEM private key is not Ed25519")
    return key


def load_public_key(text: str) -> Ed25519PublicKey:
    """Load an Ed25519 public key from SubjectPublicKeyInfo PEM or base64 of its 32 bytes."""
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        return Ed25519PublicKey.from_public_bytes(_decode_raw(text, "public key"))
    key = serialization.load_pem_public_key(text.encode("ascii"))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("PEM public key is not Ed25519")
    return key


def public_key_raw(public_key: Ed25519PublicKey) -> bytes:
    """Return the 32 raw bytes of a public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """Return a short stable identifier for a public key (first 16 hex of its SHA-256)."""
    return hashlib.sha256(public_key_raw(public_key)).hexdigest()[:16]


def generate_keypair(*, pem: bool = False) -> KeyPair:
    """Generate a signing keypair as base64 raw keys, or as PKCS#8 / SPKI PEM."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    if pem:
        private_text = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        public_text = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
        return KeyPair(private_text, public_text)
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return KeyPair(
        base64.b64encode(seed).decode("ascii"),
        base64.b64encode(public_key_raw(public)).decode("ascii"),
    )
