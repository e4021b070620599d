"""Signed webhooks, as schools' and forces' systems receive them: the HMAC, the headers, the
poster, the retry backoff and the rule for a receiver's URL (one home for all of them)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta
from typing import Annotated, Protocol

import httpx
from pydantic import AfterValidator, Field

from services.common.safe_http import Egress, post_pinned, registration_refusal

SIGNATURE_HEADER = "X-Daybreak-Signature"
TIMESTAMP_HEADER = "X-Daybreak-Timestamp"
DELIVERY_HEADER = "X-Daybreak-Delivery"
_MAX_BACKOFF = timedelta(hours=1)
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
    """The URL itself if some deployment may post a webhook there (https, or http to this
    machine, no credentials, no private address); ValueError otherwise, as a pydantic
    validator raises. The route then applies its own deployment's loopback setting
    (services/common/safe_http.refuse_unsafe_registration)."""
    if not _URL_SHAPE.fullmatch(url):  # a URL parser would drop spaces and tabs
        raise ValueError("must be an https URL")
    if (message := registration_refusal(url, allow_loopback=True)) is not None:
        raise ValueError(message)
    return url


# where a receiver takes its webhooks, as an API body names it
WebhookUrl = Annotated[str, Field(max_length=2000, json_schema_extra={
    "pattern": WEBHOOK_URL_PATTERN}), AfterValidator(check_webhook_url)]


class HttpxWebhookPoster:
    """Posts signed JSON bodies to the address checked for the URL (safe_http.post_pinned);
    a refused address or any status other than 2xx is a failure to retry."""

    def __init__(self, client: httpx.AsyncClient, *, egress: Egress) -> None:
        self.client = client
        self.egress = egress

    async def post(self, url: str, *, secret: str, body: bytes, timestamp: int,
                   delivery_id: str) -> None:
        """Post the body with the timestamp, signature and delivery id headers."""
        await post_pinned(self.client, url, content=body, egress=self.egress, headers={
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign_webhook(secret, timestamp=timestamp, body=body),
            DELIVERY_HEADER: delivery_id,
        })
