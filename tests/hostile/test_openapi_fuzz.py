"""Schemathesis against every service's OpenAPI, as `st run --checks all` would run it: every
route of each service, positive and negative data, the stateful links, each route as every
role tests/security/matrix.py lets call it and the public ones signed out; any finding fails.

Bounded for CI (two cores): DAYBREAK_FUZZ_EXAMPLES examples per operation and phase, seed
DAYBREAK_FUZZ_SEED, DAYBREAK_FUZZ_STEPS steps per stateful scenario. The sign-in routes are
fuzzed where they are served (identity) and once where they are relayed (ingest).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

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
from tests.hostile.fuzz import Caller, Report, Route, fuzz, lifespans
from tests.security.matrix import BEARER, PUBLIC, decisions, routes_of
from tests.support.api import issuer_for
from tests.support.incidents import register_force
from tests.support.tokens import identity_settings_for, mint

pytestmark = [
    pytest.mark.integration,
    # schemathesis draws from `random` inside its strategies; Hypothesis seeds it per example
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]
SERVICES = ("identity", "ingest", "matcher", "notifier", "audit")
SHARED_ROUTES = {("POST", "/v1/token"), ("POST", "/v1/sessions")}
NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)  # the apps' clock: a Monday morning
FORCE = "WMP"


def principal(role: str) -> Principal:
    """A principal of the role, with a force, a school and an LA of its own."""
    if role == "police":
        return Principal(subject="client-fuzz", kind="client", role="police",
                         scopes=frozenset({"incidents:write"}), force_code=FORCE)
    return Principal(subject=f"{role}@fuzz.test", kind="user", role=role,
                     scopes=frozenset(ROLE_SCOPES[role]), school_urns=frozenset({"100001"}),
                     la_codes=frozenset({"FZ1"}))


def callers(service: str, served: set[Route]) -> list[Caller]:
    """Each role the matrix lets call some of the service's routes, with those routes; the
    public routes signed out (the relayed sign-in routes only at identity and ingest)."""
    rules = {(m, p): rule for (s, m, p), rule in decisions().items() if s == service}
    public = {r for r in served if rules[r].access == PUBLIC}
    if service not in ("identity", "ingest"):
        public -= SHARED_ROUTES
    roles = sorted({role for r in served if rules[r].access == BEARER for role in rules[r].roles})
    now = datetime.now(UTC)  # tokens are checked against the real time, the apps' rules not
    signed = [Caller(role, {"Authorization": f"Bearer {mint(principal(role), now=now, ttl_s=3600)}"
                            }, frozenset(r for r in served if role in rules[r].roles
                               and rules[r].access == BEARER),
                     force_code=FORCE if role == "police" else None) for role in roles]
    return [*signed, Caller("signed out", {}, frozenset(public))]


def app_for(service: str, settings: Settings, tmp_path: Path) -> FastAPI:
    """The service's app, built as `main.py` builds it, its clock pinned."""
    if service == "identity":
        app = build_identity(identity_settings_for(settings))
    elif service == "notifier":
        app = build_notifier(NotifierSettings(**settings.model_dump()),
                             issuer=issuer_for(settings))
    elif service == "audit":
        app = build_audit(AuditSettings(
            **settings.model_dump(), audit_signing_key=generate_keypair().private_key,
            audit_heads_file=tmp_path / "heads.jsonl"), issuer=issuer_for(settings))
    else:
        build = {"ingest": build_ingest, "matcher": build_matcher}[service]
        app = build(settings, issuer=issuer_for(settings))
    app.state.ctx.clock = lambda: NOW
    return app


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_answers_as_its_openapi_says(
    service: str, settings: Settings, tmp_path: Path
) -> None:
    if service == "ingest":  # the police principal's force can report (its profile is set)
        asyncio.run(register_force(settings, FORCE))
    app = app_for(service, settings, tmp_path)
    served = {(m, p) for _, m, p in routes_of(service, app)}
    unlisted = served - {(m, p) for s, m, p in decisions() if s == service}
    assert not unlisted, f"routes missing from tests/security/matrix.py: {sorted(unlisted)}"
    served = {r for r in served if r[1] in app.openapi()["paths"]}
    reports: dict[str, Report] = {}
    with lifespans():
        for caller in callers(service, served):
            if caller.routes:
                reports[caller.name] = fuzz(app, caller, now=NOW - timedelta(hours=9))
    findings = [f for report in reports.values() for f in report.findings]
    assert not findings, f"{len(findings)} finding(s):\n\n" + "\n\n".join(findings)
    for name, report in reports.items():
        if name != "signed out":
            assert not report.only({401, 403}), f"{name} never got past authentication"
