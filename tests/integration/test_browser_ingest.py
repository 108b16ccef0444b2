"""A real browser call, scored: headless Chromium -> netquality-stats.js -> ingest -> worker.

Two RTCPeerConnections in one page call each other with audio and video from Chromium's fake
devices; the browser script posts their real getStats samples to a running ``netquality
ingest``; a real worker scores them and the test sees level events for both participants.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import pytest

from pipelines.contracts import decode_level, decode_stats
from pipelines.runtime.process import ManagedProcess, free_port, port_open

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")


def start_ingest(settings, token: str, tmp_path: Path) -> tuple[ManagedProcess, int]:
    port = free_port()
    env = {**os.environ, **settings.as_env(), "NETQUALITY_INGEST_TOKENS": token,
           "NETQUALITY_INGEST_PORT": str(port)}
    proc = ManagedProcess(
        "ingest", [sys.executable, "-m", "pipelines.cli", "ingest", "--loglevel", "warning"],
        log_path=tmp_path / "ingest.log", env=env,
    )
    proc.start()
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port):
        assert proc.alive and time.monotonic() < deadline, proc.log_tail()
        time.sleep(0.1)
    return proc, port


def test_a_real_browser_call_is_scored_for_both_participants(
    worker_settings, kafka_io, start_worker, tmp_path
):
    from playwright.sync_api import sync_playwright

    token = uuid.uuid4().hex
    start_worker(worker_settings)
    ingest, port = start_ingest(worker_settings, token, tmp_path)
    sids = {f"PA-browser-a-{token[:6]}", f"PA-browser-b-{token[:6]}"}
    a, b = sorted(sids)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                # Playwright gives every launch a fresh temporary profile (--user-data-dir).
                args=CHROMIUM_ARGS,
            )
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/loopback#token={token}&room=RM-browser"
                          f"&region=local&a={a}&b={b}&batchMs=1000")
                levels = kafka_io.read(
                    worker_settings.topic_levels,
                    until=lambda r: {decode_level(x.value).participant_sid for x in r} >= sids,
                    timeout=50,
                )
                state = page.evaluate("window.netqualityLoopback")
            finally:
                browser.close()
    finally:
        ingest.stop(timeout=15)
    events = [decode_level(r.value) for r in levels]
    assert {e.participant_sid for e in events} >= sids, (state, ingest.log_tail())
    assert {e.room_sid for e in events} == {"RM-browser"}
    assert not state["errors"], state["errors"]
    assert state["results"] and all(r["status"] == 200 for r in state["results"])
    samples = [decode_stats(r.value) for r in kafka_io.read(
        worker_settings.topic_stats, until=lambda r: len(r) >= 4, timeout=10)]
    for sid in sids:
        mine = [s for s in samples if s.participant_sid == sid]
        assert mine and mine[0].seq == 1
        # Real media flowed both ways: audio and video sent and received by each peer.
        last = mine[-1]
        assert {t.kind for t in last.outbound} == {"audio", "video"}, last
        assert {t.kind for t in last.inbound} == {"audio", "video"}, last
        assert all(t.bytes_sent > 0 for t in last.outbound)
