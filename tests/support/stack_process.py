"""Processes for `tests.support.stack`: a restartable child process, a service run with
`daybreak serve`, and the SMTP sink that records what the notifier sends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import REPO
from tests.support.ports import free_port


def run_in_thread(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine to completion on a fresh loop in its own thread (callable from anywhere,
    including code that is itself running inside an event loop)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(make())
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


@dataclass
class Child:
    """One long-running child process: its own session (so a group kill takes its children
    too), its output appended to a log file, optionally run as another user."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str]
    cwd: Path = REPO
    user: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def spawn(self) -> None:
        """Start the process (refuses while the previous one still runs)."""
        if self.alive():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        with self.log_path.open("ab") as out:
            out.write(f"=== {self.name} starting at {time.strftime('%H:%M:%S')} ===\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.cwd, start_new_session=True, user=self.user,
                group=self.user, extra_groups=[] if self.user else None)

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self.popen.pid if self.alive() and self.popen else None

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int, *, group: bool = False) -> None:
        """Send a signal to the process, or to its whole process group."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            if group:
                os.killpg(self.popen.pid, sig)
            else:
                self.popen.send_signal(sig)
        except ProcessLookupError:
            pass

    def wait_exit(self, timeout_s: float) -> bool:
        """Wait for the process to exit; False on timeout."""
        if self.popen is None:
            return True
        try:
            self.popen.wait(timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False

    def halt(self, sig: int, *, timeout_s: float = 30, group: bool = False) -> None:
        """Signal and wait; SIGKILL the group if it has not exited in time."""
        self.signal(sig, group=group)
        if not self.wait_exit(timeout_s):
            self.signal(signal.SIGKILL, group=True)
            self.wait_exit(30)

    def tail(self, lines: int = 40) -> str:
        """The end of the log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_until(check: Callable[[], bool], child: Child, *, timeout_s: float, what: str) -> None:
    """Poll `check` until true; raise with the log's tail if the child dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited while {what}:\n{child.tail()}")
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{child.name} not {what} after {timeout_s:.0f}s:\n{child.tail()}")


def children_of(pid: int | None) -> list[int]:
    """The ids of a process's children, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # the command name may hold spaces: the fields after its closing bracket
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@dataclass(frozen=True)
class Mail:
    """One message the sink accepted; `at` is time.monotonic() on arrival."""

    at: float
    message_id: str
    rcpt_tos: tuple[str, ...]
    subject: str
    body: str
    content: bytes


@dataclass
class MailSink:
    """An aiosmtpd server on a free port that keeps every message, in arrival order.

    With `delay_s` set it holds each message that long before accepting it (the sender is
    then mid-send: a moment to crash something); `receiving` is set when a message arrives.
    """

    port: int = field(default_factory=free_port)
    messages: list[Mail] = field(default_factory=list)
    delay_s: float = 0.0
    receiving: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd hook: record the message, accept it."""
        self.receiving.set()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        body = parsed.get_body(("plain",))
        with self._lock:
            self.messages.append(Mail(time.monotonic(), str(parsed["Message-ID"] or ""),
                                      tuple(envelope.rcpt_tos), str(parsed["Subject"] or ""),
                                      body.get_content() if body else "", envelope.content))
        return "250 OK"


class Service:
    """One `daybreak serve` process on a fixed port; ready when /readyz answers 200."""

    def __init__(self, name: str, port: int, log: Path, env: dict[str, str],
                 args: list[str] | None = None) -> None:
        self.port = port
        argv = [str(REPO / ".venv" / "bin" / "daybreak"), "serve", name, "--port", str(port),
                *(args or [])]
        self.child = Child(name, argv, log, env)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 90) -> None:
        """Spawn and wait until ready."""
        self.child.spawn()
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 90) -> None:
        """Until GET /readyz is 200 (database and broker answer)."""
        def ready() -> bool:
            return httpx.get(f"{self.url}/readyz", timeout=3).status_code == 200
        wait_until(ready, self.child, timeout_s=timeout_s, what="ready")

    def stop(self) -> None:
        """SIGTERM: uvicorn drains, the lifespan stops consumers and dispatcher."""
        self.child.halt(signal.SIGTERM, timeout_s=30)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process and wait for it to exit."""
        self.child.halt(sig, timeout_s=30, group=sig == signal.SIGKILL)
