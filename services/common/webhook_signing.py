"""Signed webhooks, as schools' and forces' systems receive them: the HMAC, the headers, the
poster, the retry backoff and the rule for a receiver's URL (one home for all of them)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta
from typing import Annotated, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, Field

SIGNATURE_HEADER = "X-Daybreak-Signature"
TIMESTAMP_HEADER = "X-Daybreak-Timestamp"
DELIVERY_HEADER = "X-Daybreak-Delivery"
_MAX_BACKOFF = timedelta(hours=1)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# what JSON Schema can say of a receiver's URL: http(s), no space or control character
WEBHOOK_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7f]+$"
_URL_SHAPE = re.compile(WEBHOOK_URL_PATTERN.removeprefix("^").removesuffix("$"))


class WebhookPoster(Protocol):
    """Posts one signed webhook body or raises."""

    async def post(self, url: str, *, secret: str, body: bytes, timestamp: int,
                   delivery_id: str) -> None: ...


def sign_webhook(secret: str, *, timestamp: int, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the value of the signature header."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def backoff_delay(attempts: int, *, base_s: float) -> timedelta:
    """Exponential backoff after the n-th failed attempt (1, 2, 4, ... times base), capped."""
    return min(timedelta(seconds=base_s * 2 ** max(attempts - 1, 0)), _MAX_BACKOFF)


def check_webhook_url(url: str) -> str:
    """The URL itself if a webhook may be posted there (https, or http to this machine, and
    no credentials in it); ValueError otherwise, as a pydantic validator raises."""
    if not _URL_SHAPE.fullmatch(url):  # urlsplit would drop spaces and tabs
        raise ValueError("must be an https URL")
    parts = urlsplit(url)
    loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if not (parts.scheme == "https" or loopback) or not parts.hostname:
        raise ValueError("must be an https URL")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")
    return url


# where a receiver takes its webhooks, as an API body names it
WebhookUrl = Annotated[str, Field(max_length=2000, json_schema_extra={
    "pattern": WEBHOOK_URL_PATTERN}), AfterValidator(check_webhook_url)]


class HttpxWebhookPoster:
    """Posts signed JSON bodies; any status other than 2xx is a failure to retry."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, url: str, *, secret: str, body: bytes, timestamp: int,
                   delivery_id: str) -> None:
        """Post the body with the timestamp, signature and delivery id headers."""
        response = await self.client.post(url, content=body, headers={
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign_webhook(secret, timestamp=timestamp, body=body),
            DELIVERY_HEADER: delivery_id,
        })
        response.raise_for_status()
