"""The security decision for every route of every service: who may call it, and with what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests.support.incidents import incident_body

SERVICES = ("identity", "ingest", "matcher", "notifier", "audit")
PUBLIC, BEARER, PORTAL = "public", "bearer", "portal"
METRICS = "metrics-token"  # DAYBREAK_METRICS_TOKEN as the bearer: no person's token opens it
PORTAL_ROLES = frozenset({"dsl", "deputy_dsl", "la_officer"})  # notifications:read people


@dataclass(frozen=True)
class Call:
    """What to send: a JSON body, raw content, a portal form, query parameters."""

    json: Any = None
    content: bytes | None = None
    content_type: str | None = None
    form: dict[str, str] | None = None
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """One route's decision.

    `attack` is a request that would succeed if the gate let the caller through; `probe` is
    what an entitled owner sends to show the gate opens for them without changing anything.
    """

    access: str
    reason: str = ""
    roles: frozenset[str] = frozenset()
    owners: frozenset[str] | None = None  # None: every principal with an allowed role
    foreign: int = 404  # an allowed role, someone else's object: existence is hidden
    attack: Call = Call()
    probe: Call | None = None
    probe_status: int = 200
    refused: int = 303  # a portal page's answer to someone signed in with another role


def _public(reason: str) -> Rule:
    return Rule(PUBLIC, reason=reason)


def _admin(attack: Call = Call(), probe: Call | None = None, status: int = 200) -> Rule:
    return Rule(BEARER, roles=frozenset({"admin"}), attack=attack, probe=probe,
                probe_status=status)


def _auditor(attack: Call = Call(), probe: Call | None = None, status: int = 200) -> Rule:
    return Rule(BEARER, roles=frozenset({"auditor"}), attack=attack, probe=probe,
                probe_status=status)


NOT_JSON = Call(content=b"{}", content_type="application/json")  # 415: the CSV routes want CSV
INVALID = Call(json={"unexpected": True})  # 422, after the gate
POLICE = frozenset({"police"})
READERS = frozenset({"dsl", "deputy_dsl", "la_officer"})
SCHOOL_X = frozenset({"dsl_x", "deputy_x"})
ACK_FORM = {"action": "none_needed", "on-none_needed": "{today}", "attended": "yes"}
LA_OFFICERS = frozenset({"la_officer"})
LA_1 = frozenset({"la_1"})
FIGURE_READERS = frozenset({"partnership", "la_officer"})
AUDITORS = frozenset({"auditor"})
ADMINS = frozenset({"admin"})
PEOPLE = frozenset({"dsl", "deputy_dsl", "la_officer", "auditor", "admin", "partnership"})
SOME_CHILD = "0e5d4a5e-9a4b-4a47-8e37-7f3b8f3d2c10"  # refused at the gate before it is looked up

COMMON: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): _public("liveness probe; answers {status: ok}"),
    ("GET", "/readyz"): _public("readiness probe; names failed dependencies, no data"),
    ("GET", "/metrics"): Rule(METRICS, reason=(
        "Prometheus scrape with DAYBREAK_METRICS_TOKEN: route templates, status codes, counts "
        "by force and outcome; no ids, names or child data (asserted); keep it off the "
        "public proxy")),
    ("GET", "/openapi.json"): _public("the published API contract"),
    ("POST", "/v1/token"): _public(
        "OAuth2 client-credentials sign-in; throttled (served by identity, relayed elsewhere)"),
    ("POST", "/v1/sessions"): _public(
        "password + TOTP sign-in; throttled (served by identity, relayed elsewhere)"),
}

SPECIFIC: dict[tuple[str, str, str], Rule] = {
    ("identity", "GET", "/.well-known/jwks.json"): _public(
        "the public halves of the token signing keys; nothing secret by construction"),
    ("ingest", "POST", "/v1/incidents"): Rule(
        BEARER, roles=POLICE, owners=frozenset({"police_a"}), foreign=403,
        attack=Call(json=incident_body("WMP")), probe=INVALID, probe_status=422),
    ("ingest", "POST", "/v1/incidents/{incident_id}/withdraw"): Rule(
        BEARER, roles=POLICE, owners=frozenset({"police_a"}),
        attack=Call(json={"reason": "sent in error"}), probe=INVALID, probe_status=422),
    ("ingest", "GET", "/v1/incidents/{incident_id}"): Rule(
        BEARER, roles=POLICE, owners=frozenset({"police_a"})),
    ("ingest", "PUT", "/v1/incidents/{incident_id}"): Rule(
        BEARER, roles=POLICE, owners=frozenset({"police_a"}),
        attack=Call(json=incident_body("WMP")), probe=INVALID, probe_status=422),
    ("ingest", "POST", "/v1/incidents/{incident_id}/children/{child_index}/withdraw"): Rule(
        BEARER, roles=POLICE, owners=frozenset({"police_a"}),
        attack=Call(json={"reason": "sent in error"}), probe=INVALID, probe_status=422),
    ("ingest", "PUT", "/v1/forces/{force_code}"): _admin(
        Call(json={"name": "Hijacked", "disclosure_profile": {"fields": ["summary"]}}),
        INVALID, 422),
    ("ingest", "GET", "/v1/forces/{force_code}"): _admin(),
    ("ingest", "GET", "/v1/admin/readiness"): _admin(),
    ("matcher", "PUT", "/v1/local-authorities/{la_code}"): _admin(
        Call(json={"name": "Hijacked", "contacts": []}), INVALID, 422),
    ("matcher", "GET", "/v1/local-authorities/{la_code}"): _admin(),
    ("matcher", "PUT", "/v1/schools/{urn}"): _admin(
        Call(json={"name": "Hijacked", "la_code": "{la_code}"}), INVALID, 422),
    ("matcher", "GET", "/v1/schools/{urn}"): _admin(),
    ("matcher", "PUT", "/v1/schools/{urn}/calendar"): _admin(
        Call(content=b"urn,date,kind\n", content_type="text/csv"), NOT_JSON, 415),
    ("matcher", "GET", "/v1/schools/{urn}/calendar"): _admin(),
    # the school has no term dates of its own to drop: the gate opens and nothing changes
    ("matcher", "DELETE", "/v1/schools/{urn}/calendar/term-dates"): _admin(),
    ("matcher", "PUT", "/v1/local-authorities/{la_code}/calendar"): _admin(
        Call(content=b"date,kind\n", content_type="text/csv"), NOT_JSON, 415),
    ("matcher", "GET", "/v1/local-authorities/{la_code}/calendar"): _admin(),
    ("matcher", "POST", "/v1/schools/{urn}/roster"): _admin(
        Call(content=b"urn,upn,given_name\n", content_type="text/csv"), NOT_JSON, 415),
    ("matcher", "GET", "/v1/reviews"): Rule(BEARER, roles=frozenset({"la_officer"})),
    ("matcher", "GET", "/v1/reviews/{review_id}"): Rule(
        BEARER, roles=frozenset({"la_officer"}), owners=frozenset({"la_1"})),
    ("matcher", "POST", "/v1/reviews/{review_id}/resolve"): Rule(
        BEARER, roles=frozenset({"la_officer"}), owners=frozenset({"la_1"}),
        attack=Call(json={"outcome": "not_on_roll"}), probe=INVALID, probe_status=422),
    ("matcher", "POST", "/v1/reviews/{review_id}/handover"): Rule(
        BEARER, roles=frozenset({"la_officer"}), owners=frozenset({"la_1"}),
        attack=Call(json={"to_la": "{la_2}", "reason": "the family moved"}), probe=INVALID,
        probe_status=422),
    # the owning LA's own officer passes the gate: nothing is offered to it (409)
    ("matcher", "POST", "/v1/reviews/{review_id}/handover/accept"): Rule(
        BEARER, roles=frozenset({"la_officer"}), owners=frozenset({"la_1"}), probe_status=409),
    ("matcher", "POST", "/v1/reviews/{review_id}/handover/decline"): Rule(
        BEARER, roles=frozenset({"la_officer"}), owners=frozenset({"la_1"}), probe_status=409),
    ("matcher", "GET", "/v1/admin/readiness"): _admin(),
    ("notifier", "GET", "/v1/notifications"): Rule(BEARER, roles=READERS),
    ("notifier", "GET", "/v1/open-items"): Rule(BEARER, roles=frozenset({"la_officer", "admin"})),
    ("notifier", "GET", "/v1/notifications/{notification_id}"): Rule(
        BEARER, roles=READERS, owners=SCHOOL_X),
    ("notifier", "POST", "/v1/notifications/{notification_id}/acknowledge"): Rule(
        BEARER, roles=READERS, owners=SCHOOL_X, attack=Call(json={"action_taken": "none"}),
        probe=INVALID, probe_status=422),
    ("notifier", "POST", "/v1/notifications/{notification_id}/attendance"): Rule(
        BEARER, roles=READERS, owners=SCHOOL_X,
        attack=Call(json={"children": [{"child_id": SOME_CHILD, "attended": False}]}),
        probe=INVALID, probe_status=422),
    ("notifier", "GET", "/v1/deliveries/dead"): _admin(),
    ("notifier", "GET", "/portal/static/{name}"): _public(
        "the portal's built stylesheet and script, by name from one directory"),
    ("notifier", "GET", "/portal/accessibility"): _public("the accessibility statement"),
    ("notifier", "GET", "/portal/sign-in"): _public("the sign-in form"),
    ("notifier", "POST", "/portal/sign-in"): _public("password + TOTP form; CSRF, throttled"),
    ("notifier", "POST", "/portal/sign-out"): _public("forgets the cookie; CSRF-checked"),
    ("notifier", "GET", "/portal/link/{token}"): _public(
        "e-mailed single-use link; only leads to the sign-in form, signs no one in"),
    ("notifier", "GET", "/portal/"): Rule(PORTAL, roles=PORTAL_ROLES),
    ("notifier", "GET", "/portal/notifications/{notification_id}"): Rule(
        PORTAL, roles=PORTAL_ROLES, owners=SCHOOL_X),
    ("notifier", "POST", "/portal/notifications/{notification_id}/acknowledge"): Rule(
        PORTAL, roles=PORTAL_ROLES, owners=SCHOOL_X, attack=Call(form=ACK_FORM),
        probe=Call(form={"action": "tea", "attended": "yes"}), probe_status=422),
    ("notifier", "POST", "/portal/notifications/{notification_id}/attendance"): Rule(
        PORTAL, roles=PORTAL_ROLES, owners=SCHOOL_X,
        attack=Call(form={f"child-{SOME_CHILD}": "absent"}), probe=Call(form={}),
        probe_status=422),
    # the review pages call the matcher with the officer's own token: it decides (and audits)
    ("notifier", "GET", "/portal/reviews"): Rule(PORTAL, roles=LA_OFFICERS),
    ("notifier", "GET", "/portal/open-items"): Rule(PORTAL, roles=LA_OFFICERS),
    ("notifier", "GET", "/portal/reviews/{review_id}"): Rule(PORTAL, roles=LA_OFFICERS,
                                                             owners=LA_1),
    ("notifier", "POST", "/portal/reviews/{review_id}/resolve"): Rule(
        PORTAL, roles=LA_OFFICERS, owners=LA_1,
        attack=Call(form={"choice": "outcome:not_on_roll", "reason": "not ours"}),
        probe=Call(form={"choice": "nonsense", "reason": "x"}), probe_status=422),
    # the partnership's figures: codes and counts only, of the caller's own LAs
    ("notifier", "GET", "/portal/partnership"): Rule(PORTAL, roles=FIGURE_READERS),
    ("notifier", "GET", "/portal/partnership.csv"): Rule(PORTAL, roles=FIGURE_READERS),
    ("audit", "GET", "/v1/audit/events"): _auditor(),
    ("audit", "GET", "/v1/audit/events.csv"): _auditor(),
    ("audit", "GET", "/v1/audit/verify"): _auditor(),
    ("audit", "GET", "/v1/audit/events/{event_id}/proof"): _auditor(),
    ("audit", "GET", "/v1/audit/consistency"): _auditor(
        Call(params={"from": "{tree_size}", "to": "{tree_size}"})),
    ("audit", "POST", "/v1/audit/subject-access"): _auditor(
        Call(json={"given_name": "{given}", "family_name": "{family}",
                   "date_of_birth": "{born}"}), INVALID, 422),
    # follow-ups, the LA's partner directory (its officers keep it, its schools' DSLs read it)
    ("notifier", "POST", "/v1/notifications/{notification_id}/actions"): Rule(
        BEARER, roles=READERS, owners=SCHOOL_X,
        attack=Call(json={"type": "none_needed", "on": "{today}"}), probe=INVALID,
        probe_status=422),
    ("notifier", "GET", "/v1/partners/{la_code}"): Rule(
        BEARER, roles=READERS, owners=frozenset({"dsl_x", "deputy_x", "la_1"})),
    ("notifier", "PUT", "/v1/partners/{la_code}"): Rule(
        BEARER, roles=LA_OFFICERS, owners=LA_1, attack=Call(json={"partners": []}),
        probe=INVALID, probe_status=422),
    ("notifier", "POST", "/portal/notifications/{notification_id}/actions"): Rule(
        PORTAL, roles=PORTAL_ROLES, owners=SCHOOL_X,
        attack=Call(form={"type": "none_needed", "on": "{today}"}),
        probe=Call(form={"type": "tea"}), probe_status=422),
    ("notifier", "GET", "/portal/partners"): Rule(PORTAL, roles=LA_OFFICERS),
    ("notifier", "GET", "/portal/partners/entry"): Rule(PORTAL, roles=LA_OFFICERS),
    ("notifier", "POST", "/portal/partners/entry"): Rule(
        PORTAL, roles=LA_OFFICERS, owners=LA_1,
        attack=Call(form={"la": "{la_code}", "need_type": "housing", "name": "Hijack"}),
        probe=Call(form={"la": "{la_code}", "need_type": "tea"}), probe_status=422),
    # the owner's probe names no entry: nothing is removed (404)
    ("notifier", "POST", "/portal/partners/remove"): Rule(
        PORTAL, roles=LA_OFFICERS, owners=LA_1, attack=Call(form={"la": "{la_code}",
                                                                  "entry": "0"}),
        probe=Call(form={"la": "{la_code}", "entry": "none"}), probe_status=404),
    # receipts: each force lists its own changes; its webhook is its own police client's
    ("ingest", "GET", "/v1/incidents"): Rule(BEARER, roles=POLICE),
    ("ingest", "PUT", "/v1/forces/{force_code}/receipts-webhook"): Rule(
        BEARER, roles=POLICE, owners=frozenset({"police_a"}),
        attack=Call(json={"url": "https://attacker.example/hook", "secret": "s" * 40}),
        probe=INVALID, probe_status=422),
    ("ingest", "GET", "/v1/forces/{force_code}/receipts-webhook"): Rule(
        BEARER, roles=POLICE, owners=frozenset({"police_a"})),
    ("ingest", "DELETE", "/v1/forces/{force_code}/receipts-webhook"): Rule(
        BEARER, roles=POLICE, owners=frozenset({"police_a"}), probe_status=204),
    ("notifier", "GET", "/v1/notifications/{notification_id}/record"): Rule(
        BEARER, roles=READERS, owners=SCHOOL_X, attack=Call(params={"format": "csv"})),
    ("notifier", "GET", "/portal/notifications/{notification_id}/record.json"): Rule(
        PORTAL, roles=PORTAL_ROLES, owners=SCHOOL_X),
    ("notifier", "GET", "/portal/notifications/{notification_id}/record.csv"): Rule(
        PORTAL, roles=PORTAL_ROLES, owners=SCHOOL_X),
    # the auditor's pages call the audit service with the auditor's own token; anyone else
    # signed in gets a 403 page
    ("notifier", "GET", "/portal/audit"): Rule(
        PORTAL, roles=AUDITORS, refused=403, attack=Call(params={"search": "1"})),
    ("notifier", "GET", "/portal/audit/events.csv"): Rule(
        PORTAL, roles=AUDITORS, refused=403, attack=Call(params={"search": "1"})),
    ("notifier", "GET", "/portal/audit/verify"): Rule(PORTAL, roles=AUDITORS, refused=403),
    ("notifier", "GET", "/portal/audit/subject-access"): Rule(
        PORTAL, roles=AUDITORS, refused=403),
    ("notifier", "POST", "/portal/audit/subject-access"): Rule(
        PORTAL, roles=AUDITORS, refused=403, attack=Call(form={
            "given_name": "{given}", "family_name": "{family}", "dob-day": "{born_day}",
            "dob-month": "{born_month}", "dob-year": "{born_year}"}),
        probe=Call(form={}), probe_status=422),
    # people and police clients (identity's admin API); the probes change only the world's
    # spare accounts (world.py `spare_accounts`), never a principal's own
    ("identity", "GET", "/v1/users"): _admin(),
    ("identity", "POST", "/v1/users"): _admin(
        Call(json={"email": "intruder@example.test", "role": "admin"}), INVALID, 422),
    ("identity", "POST", "/v1/users/{user_id}/disable"): _admin(),
    ("identity", "POST", "/v1/users/{user_id}/enable"): _admin(),
    ("identity", "POST", "/v1/users/{user_id}/reset-password"): _admin(),
    ("identity", "POST", "/v1/users/{user_id}/reenrol-totp"): _admin(),
    ("identity", "GET", "/v1/clients"): _admin(),
    ("identity", "POST", "/v1/clients"): _admin(Call(json={"force_code": "WMP"}), INVALID, 422),
    ("identity", "POST", "/v1/clients/{client_id}/disable"): _admin(),
    ("identity", "POST", "/v1/clients/{client_id}/enable"): _admin(),
    ("identity", "POST", "/v1/clients/{client_id}/rotate-secret"): _admin(),
    # the admin's portal pages call ingest, matcher and identity with the admin's own token
    ("notifier", "GET", "/portal/admin/upload.mjs"): _public(
        "the roll upload's progress script: static code, no data"),
    ("notifier", "GET", "/portal/admin"): Rule(PORTAL, roles=ADMINS),
    ("notifier", "GET", "/portal/admin/forces"): Rule(PORTAL, roles=ADMINS),
    ("notifier", "GET", "/portal/admin/forces/{force_code}"): Rule(PORTAL, roles=ADMINS),
    ("notifier", "POST", "/portal/admin/forces/{force_code}"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={"name": "Hijacked"}),
        probe=Call(form={"name": ""}), probe_status=422),
    ("notifier", "GET", "/portal/admin/local-authorities"): Rule(PORTAL, roles=ADMINS),
    ("notifier", "GET", "/portal/admin/local-authorities/{la_code}"): Rule(PORTAL, roles=ADMINS),
    ("notifier", "POST", "/portal/admin/local-authorities/{la_code}"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={"name": "Hijacked"}),
        probe=Call(form={"name": ""}), probe_status=422),
    ("notifier", "POST", "/portal/admin/local-authorities/{la_code}/calendar"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={}), probe=Call(form={}), probe_status=422),
    ("notifier", "GET", "/portal/admin/schools"): Rule(PORTAL, roles=ADMINS),
    ("notifier", "GET", "/portal/admin/schools/{urn}"): Rule(PORTAL, roles=ADMINS),
    ("notifier", "POST", "/portal/admin/schools/{urn}"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={"name": "Hijacked", "la_code": "{la_code}"}),
        probe=Call(form={"name": ""}), probe_status=422),
    ("notifier", "POST", "/portal/admin/schools/{urn}/calendar"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={}), probe=Call(form={}), probe_status=422),
    ("notifier", "POST", "/portal/admin/schools/{urn}/roster"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={}), probe=Call(form={}), probe_status=422),
    ("notifier", "GET", "/portal/admin/users"): Rule(PORTAL, roles=ADMINS),
    ("notifier", "POST", "/portal/admin/users"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={"email": "intruder@example.test",
                                                "role": "admin"}),
        probe=Call(form={"email": "", "role": "nobody"}), probe_status=422),
    ("notifier", "POST", "/portal/admin/users/{user_id}/disable"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={}), probe=Call(form={}), probe_status=303),
    ("notifier", "POST", "/portal/admin/users/{user_id}/enable"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={}), probe=Call(form={}), probe_status=303),
    ("notifier", "POST", "/portal/admin/users/{user_id}/reset-password"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={}), probe=Call(form={})),
    ("notifier", "POST", "/portal/admin/users/{user_id}/reenrol-totp"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={}), probe=Call(form={})),
    ("notifier", "GET", "/portal/admin/clients"): Rule(PORTAL, roles=ADMINS),
    ("notifier", "POST", "/portal/admin/clients"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={"force_code": "WMP"}),
        probe=Call(form={"force_code": "W1"}), probe_status=422),
    ("notifier", "POST", "/portal/admin/clients/{client_id}/disable"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={}), probe=Call(form={}), probe_status=303),
    ("notifier", "POST", "/portal/admin/clients/{client_id}/enable"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={}), probe=Call(form={}), probe_status=303),
    ("notifier", "POST", "/portal/admin/clients/{client_id}/rotate-secret"): Rule(
        PORTAL, roles=ADMINS, attack=Call(form={}), probe=Call(form={})),
    ("notifier", "GET", "/portal/admin/dead-deliveries"): Rule(PORTAL, roles=ADMINS),
    # sign-ins and refusals: login digests, addresses, user agents (identity's own record)
    ("identity", "GET", "/v1/security-events"): _admin(),
    # sessions (issue 15 finding 7)
    ("identity", "DELETE", "/v1/sessions/current"): _public(
        "sign-out: ends the session of the bearer token presented (any this issuer signed), "
        "so a holder can end only their own; answers nothing"),
    ("identity", "PUT", "/v1/users/{user_id}/access"): _admin(
        Call(json={"role": "admin", "school_urns": [], "la_codes": []}), INVALID, 422),
    ("notifier", "POST", "/portal/link"): _public(
        "uses an e-mailed sign-in link: CSRF-checked, and only as the person it was sent to "
        "(signed in already, or signing in with the form's password and code)"),
    # a person's own sessions (ASVS 7.5.2): like sign-out, any token this issuer signed for a
    # person, so the gate is the route's own (tests/integration/test_own_sessions.py)
    ("identity", "GET", "/v1/sessions"): _public(
        "the caller's own live sessions: a person's live token of any audience (401 without "
        "one, 403 for a police client); never another person's"),
    ("identity", "POST", "/v1/sessions/{sid}/end"): _public(
        "ends one of the caller's own sessions after the password and code again (throttled "
        "as sign-in); another person's is 404"),
    ("identity", "POST", "/v1/sessions/end-others"): _public(
        "ends every session of the caller's but this one, after the password and code again"),
    ("notifier", "GET", "/portal/sessions"): Rule(PORTAL, roles=PEOPLE),
    ("notifier", "GET", "/portal/sessions/{sid}/end"): Rule(PORTAL, roles=PEOPLE),
    ("notifier", "POST", "/portal/sessions/{sid}/end"): Rule(
        PORTAL, roles=PEOPLE, attack=Call(form={}), probe=Call(form={}), probe_status=422),
}


def decisions() -> dict[tuple[str, str, str], Rule]:
    """Every (service, method, path) with its rule."""
    table = {(s, m, p): rule for s in SERVICES for (m, p), rule in COMMON.items()}
    return table | SPECIFIC


def routes_of(service: str, app: FastAPI) -> set[tuple[str, str, str]]:
    """What the app really serves (HEAD rides along with GET)."""
    return {(service, method, str(ctx.path)) for ctx in iter_route_contexts(app.routes)
            for method in ctx.methods or () if method != "HEAD"}


def protected() -> list[tuple[tuple[str, str, str], Rule]]:
    """The routes that need a credential, in a stable order."""
    return sorted(((k, r) for k, r in decisions().items()
                   if r.access not in (PUBLIC, METRICS)),
                  key=lambda item: item[0])
