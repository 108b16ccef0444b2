"""Webhook signing, retry policy, secrets and the terminal rendering of alerts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.config import Settings
from pipelines.contracts import AlertEvent, AlertParticipant
from pipelines.notify.notifier import redacted, webhook_secret, webhook_urls
from pipelines.notify.signing import signature, verify
from pipelines.notify.tail import AlertFilter, render
from pipelines.notify.webhook import MAX_BACKOFF_S, RetryPolicy, retryable

KEY = b"k" * 32


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    want = hmac.new(KEY, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(KEY, 1_700_000_000, body) == f"sha256={want}"


@given(st.binary(max_size=200), st.integers(0, 2**40))
def test_verify_accepts_only_the_exact_fresh_signature(body: bytes, ts: int) -> None:
    header = signature(KEY, ts, body)
    assert verify(KEY, str(ts), body, header, now_s=ts)
    assert not verify(KEY, str(ts), body + b"x", header, now_s=ts)  # tampered body
    assert not verify(b"other" * 8, str(ts), body, header, now_s=ts)  # other key
    assert not verify(KEY, str(ts + 1), body, header, now_s=ts)  # other timestamp
    assert not verify(KEY, str(ts), body, header, now_s=ts + 301)  # replayed late
    assert not verify(KEY, None, body, header, now_s=ts)
    assert not verify(KEY, "soon", body, header, now_s=ts)


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(attempts=10, backoff_s=0.5)
    rng = random.Random(1)
    for failures in range(1, 12):
        base = min(0.5 * 2 ** (failures - 1), MAX_BACKOFF_S)
        delays = {policy.delay(failures, rng) for _ in range(20)}
        assert all(0.5 * base <= d <= 1.5 * base for d in delays)
        assert len(delays) > 1  # jittered
    assert retryable(500) and retryable(503) and retryable(429) and retryable(408)
    assert not retryable(400) and not retryable(401) and not retryable(404)


def test_secret_from_env_or_file_and_a_clear_error_without(tmp_path: Path) -> None:
    assert webhook_secret(Settings(alert_webhook_secret="s3cret")) == b"s3cret"
    path = tmp_path / "secret"
    path.write_text("from-file\n")
    assert webhook_secret(Settings(alert_webhook_secret_file=path)) == b"from-file"
    with pytest.raises(ValueError, match="NETQUALITY_ALERT_WEBHOOK_SECRET"):
        webhook_secret(Settings())
    with pytest.raises(ValueError, match="cannot read"):
        webhook_secret(Settings(alert_webhook_secret_file=tmp_path / "missing"))
    urls = Settings(alert_webhook_urls=" http://a/x , ,https://b/y")
    assert webhook_urls(urls) == ["http://a/x", "https://b/y"]
    assert redacted("https://hooks.example.com:8443/T000/B000/XXXX?token=1") == (
        "https://hooks.example.com:8443/..."
    )


def test_render_and_filter() -> None:
    event = AlertEvent(
        schema="netquality.alert.v1", alert_id="room_degraded:RM1:1", kind="room_degraded",
        status="opened", region="us1", timestamp=1_763_900_000_000, opened_at=1,
        participants=4, degraded=3, share=0.75, room_sid="RM1", message="bad",
        worst=[AlertParticipant(participant_sid="PA1", level=0, limited_by="connectionState")],
    )  # fmt: skip
    line = render(event)
    assert "OPENED" in line.plain and "RM1 (us1)" in line.plain and "3/4 (75%)" in line.plain
    assert "PA1 L0 connectionState" in line.plain
    assert any("red" in str(span.style) for span in line.spans)
    assert AlertFilter(room="RM1", kind="room_degraded").matches(event)
    assert not AlertFilter(region="eu1").matches(event)
    assert not AlertFilter(kind="participant_stuck").matches(event)


def test_the_documented_receiver_snippet_verifies_our_signatures() -> None:
    import time

    readme = (Path(__file__).parents[3] / "docs" / "alerts.md").read_text()
    start = readme.index("A receiver verifies like this:")
    code = readme[readme.index("```python\n", start) + 10 : readme.index("```\n", start + 40)]
    scope: dict = {}
    exec(compile(code, "docs/alerts.md", "exec"), scope)
    body = b'{"schema":"netquality.alert.v1"}'
    ts = int(time.time())
    headers = {"X-Netquality-Timestamp": str(ts),
               "X-Netquality-Signature": signature(KEY, ts, body)}  # fmt: skip
    assert scope["verify"](KEY, headers, body)
    assert not scope["verify"](KEY, headers, body + b" ")
    stale = {**headers, "X-Netquality-Timestamp": str(ts - 1000)}
    assert not scope["verify"](KEY, stale, body)
