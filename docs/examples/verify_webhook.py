"""Checking a Daybreak webhook before trusting it: reference code for receivers (Python 3.9+,
standard library only). Copy it; docs/integrating.md explains each rule.

    verifier = WebhookVerifier(secret=b"the secret you registered")
    outcome = verifier.check(headers, raw_body)   # raises Refused, or returns "new"/"duplicate"
    if outcome == "new":
        handle(json.loads(raw_body))
    # answer 2xx for "new" and "duplicate" alike; 401 for Refused
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE_S = 300  # a timestamp further than this from your clock is refused (replays)


class Refused(Exception):
    """The request did not come from Daybreak, or is a replay: answer 401 and drop it."""


class WebhookVerifier:
    """Verify `X-Daybreak-Signature` over `<timestamp>.<body>`, refuse stale timestamps, and
    tell a delivery seen before (Daybreak retries with the same `X-Daybreak-Delivery`)."""

    def __init__(self, secret: bytes, *, tolerance_s: int = TOLERANCE_S) -> None:
        self._secret = secret
        self._tolerance_s = tolerance_s
        self._seen: dict[str, int] = {}  # delivery id -> when it was first accepted

    def check(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> str:
        """"new" or "duplicate" for a genuine delivery; raises Refused otherwise."""
        lower = {k.lower(): v for k, v in headers.items()}
        timestamp = lower.get("x-daybreak-timestamp", "")
        signature = lower.get("x-daybreak-signature", "")
        delivery = lower.get("x-daybreak-delivery", "")
        if not timestamp.isdigit() or not delivery:
            raise Refused("missing or malformed headers")
        clock = int(time.time() if now is None else now)
        if abs(clock - int(timestamp)) > self._tolerance_s:
            raise Refused("timestamp outside the tolerance: a replay, or a wrong clock")
        mac = hmac.new(self._secret, timestamp.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest("sha256=" + mac.hexdigest(), signature):
            raise Refused("bad signature")
        # forget what is too old to be replayed anyway, then remember this one
        for old in [d for d, at in self._seen.items() if at < clock - 2 * self._tolerance_s]:
            del self._seen[old]
        if delivery in self._seen:
            return "duplicate"
        self._seen[delivery] = clock
        return "new"
