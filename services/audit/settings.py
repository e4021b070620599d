"""The audit service's settings: the shared ones plus the tree-head signing key and cadence."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, SecretStr, model_validator

from services.audit.cosign import Cosigner, parse_vkey
from services.audit.tree_head import generate_keypair, load_private_key, load_public_key
from services.common.settings import Settings

log = logging.getLogger(__name__)


class AuditSettings(Settings):
    """`DAYBREAK_AUDIT_*`: signing key (base64 seed or PEM), heads file, cadence, retention."""

    audit_signing_key: SecretStr | None = None
    audit_public_key: str | None = None  # verify-only deployments (an auditor's machine)
    audit_heads_file: Path = Path(".daybreak/audit/tree-heads.jsonl")
    audit_sign_every: int = Field(default=1000, ge=1)
    audit_sign_interval_s: float = Field(default=60.0, gt=0)
    audit_retention_years: int = Field(default=25, ge=1, le=200)
    # witnesses whose cosignatures verification checks: C2SP verifier keys (JSON list)
    audit_witness_keys: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _witness_keys_parse(self) -> AuditSettings:
        for text in self.audit_witness_keys:
            parse_vkey(text)  # fail fast if garbled
        return self

    def witnesses(self) -> list[Cosigner]:
        """The configured witnesses."""
        return [parse_vkey(text) for text in self.audit_witness_keys]

    @model_validator(mode="after")
    def _test_heads_stay_out_of_the_tree(self) -> AuditSettings:
        # test runs sign with throwaway keys and databases: keep their heads out of the
        # deployment's file unless a test names a file itself
        if self.env == "test" and "audit_heads_file" not in self.model_fields_set:
            self.audit_heads_file = Path(
                tempfile.gettempdir(), f"daybreak-audit-{os.getpid()}", "tree-heads.jsonl")
        return self

    @model_validator(mode="after")
    def _signing_key_outside_development(self) -> AuditSettings:
        if self.audit_signing_key is not None:
            load_private_key(self.audit_signing_key.get_secret_value())  # fail fast if garbled
            return self
        if self.env == "production" and self.audit_public_key is None:
            raise ValueError(
                "DAYBREAK_AUDIT_SIGNING_KEY must be set in production (`daybreak audit keygen`)"
            )
        if self.audit_public_key is None:
            log.warning("no DAYBREAK_AUDIT_SIGNING_KEY: signing tree heads with an ephemeral key")
            self.audit_signing_key = SecretStr(generate_keypair().private_key)
        return self

    def private_key(self) -> Ed25519PrivateKey:
        """The tree-head signing key; refuses verify-only settings."""
        if self.audit_signing_key is None:
            raise ValueError("DAYBREAK_AUDIT_SIGNING_KEY is required to sign tree heads")
        return load_private_key(self.audit_signing_key.get_secret_value())

    def public_key(self) -> Ed25519PublicKey:
        """The key tree heads are verified with: the configured public key, else the signer's."""
        if self.audit_public_key is not None:
            return load_public_key(self.audit_public_key)
        return self.private_key().public_key()


def audit_settings(settings: Settings | None = None) -> AuditSettings:
    """Audit settings from the environment, keeping whatever a shared Settings already holds."""
    if settings is None or isinstance(settings, AuditSettings):
        return settings or AuditSettings()
    return AuditSettings(**settings.model_dump())
