"""A real SMTP server (aiosmtpd) that keeps what it is sent: the `smtp` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.ports import free_port


@dataclass
class Inbox:
    """The aiosmtpd handler: every envelope received, readable by recipient."""

    messages: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def to(self, address: str) -> list[str]:
        """Each message to the address as its subject, a newline and its body."""
        parsed = [message_from_bytes(m.content, policy=policy.default)
                  for m in self.messages if address in m.rcpt_tos]
        return [f"{p['Subject']}\n{p.get_content()}" for p in parsed]  # type: ignore[attr-defined]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """An SMTP server on a free port: its inbox and the port."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()
