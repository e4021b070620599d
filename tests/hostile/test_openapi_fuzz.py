"""Schemathesis against every service's OpenAPI: no 5xx, every answer as the schema says.

Bounded for CI: DAYBREAK_FUZZ_EXAMPLES examples per operation and mode (positive and
negative), seed DAYBREAK_FUZZ_SEED. Each service is fuzzed signed in as the role each route
admits, then signed out. The sign-in routes are fuzzed where they are served (identity) and
once where they are relayed (ingest).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from schemathesis import GenerationMode

from services.audit.main import build_app as build_audit
from services.audit.settings import AuditSettings
from services.audit.tree_head import generate_keypair
from services.common.security import ROLE_SCOPES, Principal
from services.common.settings import Settings
from services.identity.main import build_app as build_identity
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from services.notifier.main import build_app as build_notifier
from services.notifier.settings import NotifierSettings
from tests.hostile.fuzz import Headers, Operation, fuzz, served
from tests.support.api import issuer_for
from tests.support.incidents import register_force
from tests.support.tokens import identity_settings_for, mint

pytestmark = [
    pytest.mark.integration,
    # schemathesis draws from `random` inside its strategies; Hypothesis seeds it per example
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]
OPEN_ROUTES = ("/healthz", "/readyz", "/v1/token", "/v1/sessions", "/.well-known/jwks.json")
SHARED_ROUTES = ("/v1/token", "/v1/sessions")
# the role each route prefix admits, per service (the first match wins)
ROLES: dict[str, tuple[tuple[str, str], ...]] = {
    "identity": (("/v1/users", "admin"), ("/v1/clients", "admin")),
    "ingest": (("/v1/incidents", "police"), ("/v1/forces/{force_code}/receipts-", "police"),
               ("/v1/forces", "admin"), ("/v1/admin", "admin")),
    "matcher": (("/v1/reviews", "la_officer"), ("/v1/", "admin")),
    "notifier": (("/v1/notifications", "dsl"), ("/v1/open-items", "la_officer"),
                 ("/v1/deliveries", "admin")),
    "audit": (("/v1/audit", "auditor"),),
}


def principal(role: str) -> Principal:
    """A principal of the role, with a force, a school and an LA of its own."""
    if role == "police":
        return Principal(subject="client-fuzz", kind="client", role="police",
                         scopes=frozenset({"incidents:write"}), force_code="WMP")
    return Principal(subject=f"{role}@fuzz.test", kind="user", role=role,
                     scopes=frozenset(ROLE_SCOPES[role]), school_urns=frozenset({"100001"}),
                     la_codes=frozenset({"FZ1"}))


def signed_in(settings: Settings, service: str) -> Headers:
    """Headers carrying a bearer token of the role the operation's route admits."""
    tokens = {role: mint(principal(role), now=datetime.now(UTC)) for _, role in ROLES[service]}

    def headers_for(operation: Operation) -> dict[str, str]:
        for prefix, role in ROLES[service]:
            if operation.path.startswith(prefix):
                return {"Authorization": f"Bearer {tokens[role]}"}
        return {}

    return headers_for


def app_for(service: str, settings: Settings, tmp_path: Path) -> FastAPI:
    """The service's app, built as `main.py` builds it."""
    if service == "identity":
        return build_identity(identity_settings_for(settings))
    issuer = issuer_for(settings)
    if service == "notifier":
        return build_notifier(NotifierSettings(**settings.model_dump()), issuer=issuer)
    if service == "audit":
        return build_audit(AuditSettings(
            **settings.model_dump(), audit_signing_key=generate_keypair().private_key,
            audit_heads_file=tmp_path / "heads.jsonl"), issuer=issuer)
    return {"ingest": build_ingest, "matcher": build_matcher}[service](settings, issuer=issuer)


@pytest.mark.parametrize("service", ["identity", "ingest", "matcher", "notifier", "audit"])
def test_fuzzed_operations_never_5xx_and_answer_as_documented(
    service: str, settings: Settings, tmp_path: Path
) -> None:
    skip = () if service in ("identity", "ingest") else SHARED_ROUTES
    if service == "ingest":  # the police principal's force can report (its profile is set)
        asyncio.run(register_force(settings, "WMP"))
    with served(app_for(service, settings, tmp_path)) as schema:
        signed = fuzz(schema, signed_in(settings, service), skip=skip)
        anonymous = fuzz(schema, lambda _: {}, skip=skip, examples=3,
                         modes=(GenerationMode.POSITIVE,))
    failures = signed.failures + anonymous.failures
    assert not failures, "\n\n".join(failures)
    assert not signed.only({401, 403}), "the signed-in pass never got past authentication"
    let_in = [label for label, seen in anonymous.statuses.items()
              if not label.endswith(OPEN_ROUTES) and min(seen, default=401) < 400]
    assert not let_in, f"answered without a token: {let_in}"
