"""`daybreak sandbox`: a police supplier's own corner of a local stack.

It registers (again, if it is there already) a sandbox local authority, two sandbox schools
with made-up rolls, and the sandbox force with that LA as its default, through the admin APIs as
an admin would; then it creates a police client for the force and a DSL at the first school,
and prints, once, as JSON: the client's id and secret, the URLs, the schools, and made-up
children whose reports end each way (matched, review, unmatched). A supplier runs it against
`make up` and works through docs/integrating.md with what it prints.

It refuses to run when DAYBREAK_ENV is production: its accounts and made-up rolls have no
place in a live registry.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from typing import Any

import httpx
import pyotp
from stdnum.gb import upn as upn_check

from services.common.cli_errors import CliError
from services.common.db import standalone_uow
from services.common.settings import Settings
from services.identity.accounts import create_client, create_user
from services.identity.totp_vault import totp_vault

PORTAL = "http://127.0.0.1:8003"  # the notifier's portal_base_url unless DAYBREAK_PORTAL_BASE_URL
FORCE = "SANDBOX"
LA = "SBX"
SCHOOLS = (("999901", "Sandbox Primary School", "DY1 2AB"),
           ("999902", "Sandbox Academy", "DY2 9ZZ"))
ROSTER_HEADER = ("urn,upn,given_name,preferred_name,family_name,former_family_name,"
                 "date_of_birth,gender,address_line1,postcode,enrolment_status,on_roll_from,"
                 "on_roll_to")
# made-up pupils: Ada is on one roll; the two Sam Rivers (same birthday, one at each school,
# no address to tell them apart) make a report without an address ambiguous
PUPILS = {
    "999901": [("999901001", "Ada", "Lovelace", "2016-12-10", "F", "10 St James Square",
                "DY1 2AB"),
               ("999901002", "Sam", "Rivers", "2017-04-01", "M", "3 Mill Lane", "DY1 3BD")],
    "999902": [("999902001", "Sam", "Rivers", "2017-04-01", "M", "8 Hill Top", "DY2 9ZZ"),
               ("999902002", "Grace", "Hopper", "2015-12-09", "F", "5 Navy Row", "DY2 8XY")],
}
CHILDREN = [
    {"expect": "matched", "school_urn": "999901", "child": {
        "given_name": "Ada", "family_name": "Lovelace", "date_of_birth": "2016-12-10",
        "address": {"line1": "10 St James Square", "postcode": "DY1 2AB"}}},
    {"expect": "review", "child": {
        "given_name": "Sam", "family_name": "Rivers", "date_of_birth": "2017-04-01"}},
    {"expect": "unmatched", "child": {
        "given_name": "Charles", "family_name": "Babbage", "date_of_birth": "2014-12-26",
        "address": {"line1": "1 Dorset Street", "postcode": "DY3 1AA"}}},
]


def _upn(serial: str) -> str:
    digits = f"332{serial}"  # an LA number stdnum knows (Dudley), then made-up digits
    return upn_check.calc_check_digit(digits) + digits


def roll(urn: str) -> bytes:
    """A sandbox school's roll as the roster CSV."""
    rows = [f"{urn},{_upn(serial)},{given},,{family},,{dob},{gender},{line1},{postcode},C,,"
            for serial, given, family, dob, gender, line1, postcode in PUPILS[urn]]
    return ("\n".join([ROSTER_HEADER, *rows]) + "\n").encode()


def _la_body() -> dict[str, Any]:
    return {"name": "Sandbox Council", "contacts": [
        {"role": "safeguarding", "name": "Sandbox front door", "email": "mash@sandbox.example"},
        {"role": "review", "name": "Sandbox Encompass team", "email": "review@sandbox.example"},
        {"role": "duty_manager", "name": "Sandbox duty manager",
         "email": "duty@sandbox.example"}]}


def _school_body(urn: str, name: str, postcode: str) -> dict[str, Any]:
    return {"name": name, "la_code": LA, "postcode": postcode, "participates": True,
            "day_starts_at": "08:45", "webhook": None, "contacts": [
                {"role": "dsl", "name": "Sandbox DSL", "email": f"dsl@{urn}.sandbox.example"},
                {"role": "deputy_dsl", "name": "Sandbox deputy",
                 "email": f"deputy@{urn}.sandbox.example"}]}


async def _new_account(settings: Settings, role: str, **scope: list[str]) -> dict[str, str]:
    email = f"sandbox-{role}-{secrets.token_hex(3)}@sandbox.example"
    password = secrets.token_urlsafe(18)
    async with standalone_uow(settings, "identity") as uow:
        user = await create_user(uow.conn, vault=totp_vault(settings), email=email,
                                 password=password, role=role,
                                 school_urns=scope.get("schools", []),
                                 la_codes=scope.get("las", []))
        await uow.commit()
    return {"email": email, "password": password, "totp_uri": user.totp_uri}


async def _signed_in(http: httpx.AsyncClient, account: dict[str, str]) -> dict[str, str]:
    code = pyotp.TOTP(pyotp.parse_uri(account["totp_uri"]).secret).now()
    answer = await http.post("/v1/sessions", json={
        "email": account["email"], "password": account["password"], "totp": code})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def build_sandbox(settings: Settings) -> dict[str, Any]:
    """Register the sandbox and make its accounts; what a supplier needs, as one mapping."""
    if settings.env == "production":
        raise CliError("sandbox refused: DAYBREAK_ENV is production")
    admin = await _new_account(settings, "admin")
    async with httpx.AsyncClient(base_url=settings.matcher_url, timeout=30) as matcher, \
            httpx.AsyncClient(base_url=settings.ingest_url, timeout=30) as ingest:
        headers = await _signed_in(matcher, admin)
        (await matcher.put(f"/v1/local-authorities/{LA}", json=_la_body(),
                           headers=headers)).raise_for_status()
        for urn, name, postcode in SCHOOLS:
            (await matcher.put(f"/v1/schools/{urn}", json=_school_body(urn, name, postcode),
                               headers=headers)).raise_for_status()
            (await matcher.post(f"/v1/schools/{urn}/roster", content=roll(urn), headers=headers
                                | {"Content-Type": "text/csv"})).raise_for_status()
        (await ingest.put(f"/v1/forces/{FORCE}", headers=headers, json={
            "name": "Sandbox Constabulary", "default_la_code": LA,
            "disclosure_profile": {"fields": ["occurred_at", "incident_type", "summary",
                                              "present_at_incident"]}})).raise_for_status()
    async with standalone_uow(settings, "identity") as uow:
        client = await create_client(uow.conn, force_code=FORCE)
        await uow.commit()
    dsl = await _new_account(settings, "dsl", schools=[SCHOOLS[0][0]])
    return {
        "force_code": FORCE, "client_id": client.client_id,
        "client_secret": client.client_secret,
        "token_url": f"{settings.ingest_url}/v1/token",
        "incidents_url": f"{settings.ingest_url}/v1/incidents",
        "local_authority": LA,
        "schools": [{"urn": urn, "name": name} for urn, name, _ in SCHOOLS],
        "children": CHILDREN,
        "dsl": dsl | {"portal": f"{os.environ.get('DAYBREAK_PORTAL_BASE_URL', PORTAL)}/portal/"},
    }


def main(settings: Settings) -> int:
    """Print the sandbox as one JSON document (its secrets once: nothing else keeps them)."""
    print(json.dumps(asyncio.run(build_sandbox(settings)), indent=2))
    return 0
