"""What browser tests share: Debian's Chromium driven by Playwright (the `chromium` fixture:
this module is a pytest plugin), apps served on real loopback ports (the browser needs a
socket), and waiting for something to happen."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def chromium_or_skip() -> Path:
    """Debian's Chromium (installed by scripts/install-browser.sh when missing) and the
    `playwright` package, or the test is skipped."""
    if not CHROMIUM.exists():
        script = REPO / "scripts" / "install-browser.sh"
        subprocess.run([str(script)], check=False, capture_output=True, timeout=600)
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium and scripts/install-browser.sh could not install it")
    pytest.importorskip("playwright.async_api", reason="the `playwright` package is missing")
    return CHROMIUM


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium for a browser test module (skipped when it cannot be had)."""
    return chromium_or_skip()


@asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    """The app (with its lifespan: consumers, relay, dispatcher) on a real loopback port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(300):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            raise RuntimeError(f"{app.title} did not start on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def until(get: Callable[[], Awaitable[Any]], *, seconds: float = 60, what: str) -> Any:
    """The first truthy answer of `get`, polled five times a second."""
    for _ in range(int(seconds * 5)):
        value = await get()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
