"""Webhook signatures: HMAC-SHA256 over the timestamp and the raw body (pure).

The signed text is ``"{timestamp}." + body`` (Stripe's and Slack's scheme): signing the
timestamp with the body lets a receiver refuse a captured request replayed later, which a
signature over the body alone cannot.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Netquality-Signature"
TIMESTAMP_HEADER = "X-Netquality-Timestamp"
DELIVERY_HEADER = "X-Netquality-Delivery"
"""A stable id per alert event: deliveries are at-least-once, receivers dedupe by it."""
DEFAULT_TOLERANCE_S = 300
"""Five minutes: wider than any retry schedule's single request, narrow enough for replays."""


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The header value: ``sha256=<hex digest>``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: bytes,
    timestamp: str | None,
    body: bytes,
    header: str | None,
    now_s: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """What a receiver does: a fresh timestamp and a matching signature (constant-time)."""
    if not timestamp or not header:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - ts) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, ts, body), header)
