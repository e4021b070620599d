"""A Python client generated from ingest's and the matcher's /openapi.json (with
openapi-python-client, as an integrator would) reports, retries, reads and withdraws an
incident, and imports a roster: the published contract is enough to use the API."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from services.common.settings import Settings
from services.ingest.main import build_app as build_ingest
from services.matcher.main import build_app as build_matcher
from tests.support.api import basic, issuer_for, new_police_client, running
from tests.support.ids import next_la, next_tag, next_urn
from tests.support.incidents import incident_body
from tests.support.registry import la_body, ready_school_body
from tests.support.registry_files import roll
from tests.support.tokens import mint, person

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
BIN = Path(sys.executable).parent
# the generator writes only JSON, form and binary bodies: the files go as their bytes
CONFIG = {"content_type_overrides": {media_type: "application/octet-stream" for media_type in (
    "text/csv", "text/calendar", "application/xml", "text/xml")}}


def one_file_type_per_body(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with each body of several file media types (a roster: CSV or a CTF's XML) cut
    to its first: openapi-python-client 0.29 writes such a body as code that cannot be
    imported (`NameError: Unset`), so the client is generated as a CSV client."""
    for path in spec["paths"].values():
        for operation in path.values():
            content = operation.get("requestBody", {}).get("content", {}) if isinstance(
                operation, dict) else {}
            files = [m for m, body in content.items()
                     if body.get("schema", {}).get("format") == "binary"]
            if len(files) > 1 and len(files) == len(content):
                operation["requestBody"]["content"] = {files[0]: content[files[0]]}
    return spec


def generate(spec: dict[str, Any], package: str, out: Path) -> ModuleType:
    """Generate the client package from the spec into `out` and import it."""
    (out / f"{package}.json").write_text(json.dumps(one_file_type_per_body(spec)))
    (out / "config.yml").write_text(json.dumps(  # JSON is YAML, the config's format
        CONFIG | {"package_name_override": package, "project_name_override": package}))
    done = subprocess.run(
        [BIN / "openapi-python-client", "generate", "--path", out / f"{package}.json",
         "--meta", "none", "--output-path", out / package, "--config", out / "config.yml"],
        capture_output=True, text=True, env={"PATH": f"{BIN}:/usr/bin:/bin"}, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return importlib.import_module(package)


@contextmanager
def importable(path: Path) -> Iterator[None]:
    """Packages generated under `path` can be imported, for the test's length only."""
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        sys.path.remove(str(path))
        for name in [m for m in sys.modules if m.split(".")[0] in ("ingest_api", "matcher_api")]:
            del sys.modules[name]


def bound(client: Any, http: httpx.AsyncClient) -> Any:
    """The generated client talking to the app in-process, with its own headers."""
    return client.set_async_httpx_client(httpx.AsyncClient(
        transport=http._transport, base_url=str(http.base_url),
        headers=client._headers | ({"Authorization": f"Bearer {client.token}"}
                                   if hasattr(client, "token") else {})))


async def test_a_generated_client_reports_retries_reads_and_withdraws(
    settings: Settings, tmp_path: Path
) -> None:
    client_id, secret = await new_police_client(settings, "WMP")
    app = build_ingest(settings, issuer=issuer_for(settings))
    app.state.ctx.clock = lambda: NOW
    with importable(tmp_path):
        async with running(app) as http:
            api = generate((await http.get("/openapi.json")).json(), "ingest_api", tmp_path)
            token_route = importlib.import_module("ingest_api.api.auth.token_v1_token_post")
            models = importlib.import_module("ingest_api.models")
            incidents = "ingest_api.api.incidents."
            report, read, withdraw = (importlib.import_module(incidents + name) for name in (
                "report_incident", "get_incident", "withdraw_incident"))

            anonymous = bound(api.Client(base_url="http://test", headers=basic(
                client_id, secret)), http)
            form = models.BodyTokenV1TokenPost(
                grant_type=models.BodyTokenV1TokenPostGrantType.CLIENT_CREDENTIALS)
            issued = await token_route.asyncio(client=anonymous, body=form)
            assert isinstance(issued, models.TokenOut), issued
            police = bound(api.AuthenticatedClient(base_url="http://test",
                                                   token=issued.access_token), http)

            body = models.IncidentIn.from_dict(incident_body("WMP", f"WMP-{next_tag()}"))
            first = await report.asyncio_detailed(client=police, body=body)
            retry = await report.asyncio_detailed(client=police, body=body)
            assert (first.status_code, retry.status_code) == (202, 200)
            assert first.parsed.incident_id == retry.parsed.incident_id

            status = await read.asyncio_detailed(first.parsed.incident_id, client=police)
            assert status.status_code == 200, status.content
            refused = await withdraw.asyncio(first.parsed.incident_id, client=police,
                                             body=models.WithdrawIn(reason="  "))
            assert isinstance(refused, models.Problem) and refused.status == 422
            withdrawn = await withdraw.asyncio_detailed(
                first.parsed.incident_id, client=police,
                body=models.WithdrawIn(reason="reported in error"))
            assert withdrawn.status_code == 202, withdrawn.content
            assert withdrawn.parsed.incident_id == first.parsed.incident_id
            after = await read.asyncio_detailed(first.parsed.incident_id, client=police)
            assert after.parsed.additional_properties["status"] == "withdrawn", after.content


async def test_a_generated_client_imports_a_roster(settings: Settings, tmp_path: Path) -> None:
    la, urn = next_la(), next_urn()
    app = build_matcher(settings, issuer=issuer_for(settings))
    app.state.ctx.clock = lambda: NOW
    with importable(tmp_path):
        async with running(app) as http:
            api = generate((await http.get("/openapi.json")).json(), "matcher_api", tmp_path)
            registry = "matcher_api.api.registry."
            put_la, put_school, import_roster = (importlib.import_module(registry + name) for
                                                 name in ("put_local_authority_v1_local_"
                                                          "authorities_la_code_put",
                                                          "put_school_v1_schools_urn_put",
                                                          "import_roster"))
            models = importlib.import_module("matcher_api.models")
            types = importlib.import_module("matcher_api.types")
            admin = bound(api.AuthenticatedClient(
                base_url="http://test", token=mint(person("admin"), now=datetime.now(UTC))),
                http)

            made = await put_la.asyncio_detailed(
                la, client=admin, body=models.LocalAuthorityIn.from_dict(la_body()))
            assert made.status_code == 201, made.content
            school = await put_school.asyncio_detailed(
                urn, client=admin, body=models.SchoolIn.from_dict(ready_school_body(la)))
            assert school.status_code == 201, school.content
            # the async httpx client sends bytes (it would read a file object synchronously)
            csv = types.File(payload=roll(urn, 3).encode(), mime_type="text/csv")
            imported = await import_roster.asyncio(urn, client=admin, body=csv)
            assert isinstance(imported, models.RosterImported), imported
            assert (imported.urn, imported.rows) == (urn, 3)
            broken = types.File(payload=b"urn,upn\n", mime_type="text/csv")
            refused = await import_roster.asyncio(urn, client=admin, body=broken)
            assert isinstance(refused, models.Problem) and refused.status == 422
