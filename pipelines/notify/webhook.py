"""POST one alert to one webhook, with retries, exponential backoff and jitter."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import aiohttp

from pipelines.notify.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
)

MAX_BACKOFF_S = 30.0
"""Cap on one wait: a receiver back after a minute gets the alert within half a minute."""


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries; waits of ``backoff_s * 2**n`` (capped), each scaled by 0.5..1.5.

    The jitter keeps many notifiers (or many alerts of one incident) from retrying against a
    recovering receiver in lockstep (AWS Architecture Blog, "Exponential Backoff And Jitter").
    """

    attempts: int = 6
    backoff_s: float = 0.5
    timeout_s: float = 5.0

    def delay(self, failures: int, rng: random.Random) -> float:
        return min(self.backoff_s * 2 ** (failures - 1), MAX_BACKOFF_S) * rng.uniform(0.5, 1.5)


@dataclass(frozen=True)
class Outcome:
    """How delivering to one URL ended."""

    delivered: bool
    attempts: int
    error: str = ""
    permanent: bool = False
    """The receiver refused (4xx): retrying would not help."""


def retryable(status: int) -> bool:
    """5xx, 408 and 429 may pass later; any other 4xx is the receiver saying no."""
    return status >= 500 or status in (408, 429)


async def deliver(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    delivery_id: str,
    secret: bytes,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> Outcome:
    """Try until a 2xx, a refusal, or ``policy.attempts`` failures. Re-signs every attempt
    (fresh timestamp), so a retry after minutes still passes the receiver's replay window."""
    rng = rng or random.Random()
    error = ""
    for attempt in range(1, policy.attempts + 1):
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: signature(secret, ts, body),
            DELIVERY_HEADER: delivery_id,
        }
        try:
            async with session.post(
                url, data=body, headers=headers,
                timeout=aiohttp.ClientTimeout(total=policy.timeout_s),
            ) as response:  # fmt: skip
                if 200 <= response.status < 300:
                    return Outcome(True, attempt)
                error = f"HTTP {response.status}"
                if not retryable(response.status):
                    return Outcome(False, attempt, error, permanent=True)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        if attempt < policy.attempts:
            await asyncio.sleep(policy.delay(attempt, rng))
    return Outcome(False, policy.attempts, error)
