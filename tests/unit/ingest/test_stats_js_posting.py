"""The browser script's posting loop under node: auth header, batching, retry and drop rules."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.contracts import decode_stats

SCRIPT = (
    Path(__file__).resolve().parents[3] / "pipelines" / "ingest" / "static" / "netquality-stats.js"
)
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# A fake peer connection whose counters grow, and a fetch answering a scripted status list.
HARNESS = """
const api = require(process.argv[1]);
const statuses = JSON.parse(process.argv[2]);
let bytes = 0;
const pc = {
  connectionState: "connected",
  getStats: async () => { bytes += 1000; return new Map([
    ["OT", {id: "OT", type: "outbound-rtp", kind: "audio", mid: "0", ssrc: 1,
            bytesSent: bytes, packetsSent: bytes / 100, timestamp: Date.now()}],
  ]); },
};
const calls = [];
const fetch = async (url, init) => {
  const status = statuses.length ? statuses.shift() : 200;
  calls.push({url, status, auth: init.headers.Authorization, type: init.headers["Content-Type"],
              samples: JSON.parse(init.body)});
  if (status === 0) throw new TypeError("network down");
  return {status, json: async () => ({})};
};
const monitor = api.start({peerConnections: [pc], endpoint: "http://ingest/v1/samples",
  token: "tok", roomSid: "RM", participantSid: "PA", region: "eu1", intervalMs: 20,
  batchIntervalMs: 20, maxBackoffMs: 40, fetch, onError: () => {}});
setTimeout(async () => { await monitor.stop(); console.log(JSON.stringify(calls)); }, 700);
"""


def run(statuses: list[int]) -> list[dict]:
    done = subprocess.run(
        [NODE, "-e", HARNESS, str(SCRIPT), json.dumps(statuses)],
        capture_output=True, timeout=30, check=True,
    )
    return json.loads(done.stdout)


def test_posts_authenticated_contract_samples_with_increasing_seq():
    calls = run([])
    assert len(calls) >= 3
    assert {(c["url"], c["auth"], c["type"]) for c in calls} == {
        ("http://ingest/v1/samples", "Bearer tok", "application/json")}
    samples = [decode_stats(json.dumps(s)) for c in calls for s in c["samples"]]
    assert [s.seq for s in samples] == list(range(1, len(samples) + 1))
    assert all(s.outbound[0].bytes_sent == 1000 * s.seq for s in samples)


def test_server_errors_and_network_failures_are_retried_but_refusals_are_dropped():
    calls = run([503, 0, 422, 200])
    first, retried, refused, accepted = calls[:4]
    assert [c["status"] for c in calls[:4]] == [503, 0, 422, 200]
    # 503 and the network error keep the batch: the retry starts with the same samples ...
    assert retried["samples"][0] == first["samples"][0]
    assert refused["samples"][0] == first["samples"][0]
    # ... but after a 422 those samples are gone for good.
    assert accepted["samples"][0]["seq"] > refused["samples"][-1]["seq"]
