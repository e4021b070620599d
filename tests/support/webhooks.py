"""A real webhook receiver that checks the signature: the `receiver` fixture."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.common.safe_http import Egress
from tests.support.ports import free_port
from tests.support.tls import ServerCert, issue_server_cert

HOOK_SECRET = "a-webhook-secret-of-some-length"
# how the tests' posters reach the receiver: loopback allowed, as the settings fixture has it
LOCAL = Egress(allow_loopback=True, timeout_s=5)
TLS_HOOK_HOST = "hooks.example.test"  # the name the TLS receiver's certificate is for


@dataclass
class Receiver:
    """Where the hook listens, how many first calls it refuses (with `fail_status`; a 3xx
    points back at the hook), what it accepted, the Host header of each accepted call, and
    the secret it checks signatures with."""

    url: str
    fail_first: int = 0
    fail_status: int = 503
    secret: str = HOOK_SECRET
    verified: list[bytes] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    refused: int = 0


def _hook_app(state: Receiver) -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.body()
        stamp = request.headers["x-daybreak-timestamp"]
        want = hmac.new(state.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        if not hmac.compare_digest(request.headers["x-daybreak-signature"],
                                   f"sha256={want.hexdigest()}"):
            return Response(status_code=401)
        if state.refused < state.fail_first:
            state.refused += 1
            moved = {"location": state.url} if 300 <= state.fail_status < 400 else None
            return Response(status_code=state.fail_status, headers=moved)
        state.verified.append(body)
        state.hosts.append(request.headers["host"])
        return Response(status_code=204)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@asynccontextmanager
async def _serving(state: Receiver, port: int, tls: ServerCert | None = None
                   ) -> AsyncIterator[Receiver]:
    server = uvicorn.Server(uvicorn.Config(
        _hook_app(state), host="127.0.0.1", port=port, log_level="warning",
        ssl_certfile=tls and str(tls.certfile), ssl_keyfile=tls and str(tls.keyfile)))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield state
    server.should_exit = True
    await task


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A uvicorn server taking signed POSTs to /hook (`secret`, HOOK_SECRET unless set),
    `fail_status` (503) for the first `fail_first`, 401 for a bad signature."""
    port = free_port()
    async with _serving(Receiver(url=f"http://127.0.0.1:{port}/hook"), port) as state:
        yield state


@pytest.fixture
async def tls_receiver(tmp_path: Path) -> AsyncIterator[tuple[Receiver, ServerCert]]:
    """The receiver over TLS on 127.0.0.1 with a certificate for TLS_HOOK_HOST only (from an
    authority of its own: ServerCert.client_context trusts it); its URL names that host."""
    port, cert = free_port(), issue_server_cert(tmp_path, TLS_HOOK_HOST)
    async with _serving(Receiver(url=f"https://{TLS_HOOK_HOST}:{port}/hook"), port,
                        cert) as state:
        yield state, cert
