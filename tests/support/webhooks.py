"""A real webhook receiver that checks the signature: the `receiver` fixture."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.ports import free_port

HOOK_SECRET = "a-webhook-secret-of-some-length"


@dataclass
class Receiver:
    """Where the hook listens, how many first calls it refuses (with `fail_status`), what it
    accepted and the secret it checks signatures with."""

    url: str
    fail_first: int = 0
    fail_status: int = 503
    secret: str = HOOK_SECRET
    verified: list[bytes] = field(default_factory=list)
    refused: int = 0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A uvicorn server taking signed POSTs to /hook (`secret`, HOOK_SECRET unless set),
    `fail_status` (503) for the first `fail_first`, 401 for a bad signature."""
    port = free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}/hook")

    async def hook(request: Request) -> Response:
        body = await request.body()
        stamp = request.headers["x-daybreak-timestamp"]
        want = hmac.new(state.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        if not hmac.compare_digest(request.headers["x-daybreak-signature"],
                                   f"sha256={want.hexdigest()}"):
            return Response(status_code=401)
        if state.refused < state.fail_first:
            state.refused += 1
            return Response(status_code=state.fail_status)
        state.verified.append(body)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield state
    server.should_exit = True
    await task
