"""The JS client in real headless Chromium: two participants, two pages, one real call.

Each page has its own minted access token and the served bundle (``/static/netquality.js``);
the two pages call each other with a real RTCPeerConnection (Chromium's fake camera and
microphone, host candidates on this machine). PA-a publishes its real getStats samples through
the SDK to the ingest; PA-b's uplink is degraded with scripted samples (deterministic, where the
impairment lab's relay would make this test as slow and variable as a lab run; the lab's own
live test covers real degraded calls), posted to the same ingest with PA-b's own token,
while PA-b's page follows levels without publishing. A real worker scores both; the web
service's feed brings the levels to both pages.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import msgspec
import pytest

from pipelines.access import SigningKeys, mint_access_token
from pipelines.testing import Conditions, ScriptedParticipant

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    # Two pages of one browser must reach each other's host candidates (mDNS names need a
    # responder the test machine may not run).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
KEYS_SETTING = "k1=" + "s" * 40
KEYS = SigningKeys.parse(KEYS_SETTING, "test")
WAIT_S = 90.0
"""How long a level may take to travel: samples batched each second, the worker's evidence
windows, the feed. Generous for a busy 2-core CI; not a speed claim (that is a benchmark's)."""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")

OFFER = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia(
    {audio: true, video: {width: 640, height: 360}});
  const pc = new RTCPeerConnection();
  window.pc = pc;
  stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  await pc.setLocalDescription(await pc.createOffer());
  const complete = () => pc.iceGatheringState === "complete";
  await new Promise((r) => complete() ? r() :
    pc.addEventListener("icegatheringstatechange", () => complete() && r()));
  return pc.localDescription.toJSON();
}"""

ANSWER = """async (offer) => {
  const stream = await navigator.mediaDevices.getUserMedia(
    {audio: true, video: {width: 640, height: 360}});
  const pc = new RTCPeerConnection();
  window.pc = pc;
  stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  await pc.setRemoteDescription(offer);
  await pc.setLocalDescription(await pc.createAnswer());
  const complete = () => pc.iceGatheringState === "complete";
  await new Promise((r) => complete() ? r() :
    pc.addEventListener("icegatheringstatechange", () => complete() && r()));
  return pc.localDescription.toJSON();
}"""

CONNECT = """async ({url, token, publish}) => {
  const log = {local: [], remote: {}, states: []};
  window.log = log;
  const room = await NetQuality.connect({url, token, peerConnections: [window.pc], publish,
    region: "local", networkQuality: {local: 2, remote: 2}});
  window.room = room;
  room.localParticipant.on("networkQualityLevelChanged", (level) => log.local.push(level));
  const follow = (p) => {
    log.remote[p.sid] = log.remote[p.sid] || [];
    if (p.networkQualityLevel !== null) log.remote[p.sid].push(p.networkQualityLevel);
    p.on("networkQualityLevelChanged", (level) => log.remote[p.sid].push(level));
  };
  room.participants.forEach(follow);
  room.on("participantConnected", follow);
  // Registered after connect(): runs after the client's own listener, so it sees what the
  // app would read in the same turn as the state change.
  window.pc.addEventListener("connectionstatechange", () => log.states.push(
    {state: window.pc.connectionState, local: room.localParticipant.networkQualityLevel}));
  return room.localParticipant.sid;
}"""


def wait_for(page, expression: str, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        page.wait_for_timeout(200)
    raise AssertionError(f"{what}: never true; log {page.evaluate('window.log')}")


def test_two_pages_see_each_other_a_degraded_uplink_falls_and_rises_and_a_drop_reads_0(
    sink_settings, start_worker, web_servers, no_staleness, tmp_path,
) -> None:
    from playwright.sync_api import sync_playwright

    room = f"RM-sdk-{uuid.uuid4().hex[:6]}"
    start_worker(sink_settings.with_overrides(thresholds_file=no_staleness))
    web = web_servers(sink_settings.with_overrides(access_keys=KEYS_SETTING), ingest=True)
    web.wait_ready()
    tokens = {sid: mint_access_token(KEYS, room_sid=room, participant_sid=sid, ttl_s=900)
              for sid in ("PA-a", "PA-b")}
    scripted = ScriptedParticipant("PA-b", room_sid=room, region="local", publish_video=True,
                                   subscribe_audio=1, subscribe_video=1,
                                   start_ms=int(time.time() * 1000) - 120_000)

    def publish_b(conditions: Conditions, seconds: int) -> None:
        """PA-b's samples, posted to the ingest with PA-b's own token."""
        body = [msgspec.to_builtins(scripted.step(conditions)) for _ in range(seconds)]
        answer = httpx.post(f"{web.url}/ingest/v1/samples", json=body, timeout=30,
                            headers={"Authorization": f"Bearer {tokens['PA-b']}"})
        assert answer.status_code == 200, answer.text

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            pages = {}
            for sid in ("PA-a", "PA-b"):
                page = browser.new_context().new_page()
                page.goto(f"{web.url}/healthz")  # any page of the service's origin
                page.add_script_tag(url="/static/netquality.js")
                pages[sid] = page
            a, b = pages["PA-a"], pages["PA-b"]
            b.evaluate("async (answer) => window.pc.setRemoteDescription(answer)",
                       a.evaluate(ANSWER, b.evaluate(OFFER)))
            for page in (a, b):
                wait_for(page, "window.pc.connectionState === 'connected'", "the call connects",
                         timeout=30)
            assert a.evaluate(CONNECT, {"url": web.url, "token": tokens["PA-a"],
                                        "publish": True}) == "PA-a"
            assert b.evaluate(CONNECT, {"url": web.url, "token": tokens["PA-b"],
                                        "publish": False}) == "PA-b"

            publish_b(Conditions(), 8)  # a healthy start
            # each sees the other with a level, and itself
            wait_for(a, "room.participants.get('PA-b')?.networkQualityLevel != null", "A sees B")
            wait_for(b, "room.participants.get('PA-a')?.networkQualityLevel != null", "B sees A")
            wait_for(a, "room.localParticipant.networkQualityLevel != null", "A's own level")
            good = wait_for(b, "room.localParticipant.networkQualityLevel", "B's own level")
            assert a.evaluate("room.participants.get('PA-b').networkQualityStats.video.send") \
                is not None  # verbosity 2: component levels

            # PA-b's uplink collapses under its video: A sees B fall, and so does B itself
            started = time.monotonic()
            publish_b(Conditions(uplink=150_000, loss=0.08, rtt=0.4), 8)
            fallen = f"(log.remote['PA-b'] || []).some((l) => l < {good})"
            wait_for(a, fallen, "A sees B's level fall")
            fall_s = time.monotonic() - started  # reported, not asserted (benchmarks time)
            wait_for(b, f"log.local.some((l) => l < {good})", "B's own level falls")
            low = a.evaluate("Math.min(...log.remote['PA-b'])")

            # ... and recovers: the level rises again (paced, one step per dwell)
            for _ in range(6):
                publish_b(Conditions(), 10)
                if a.evaluate(f"log.remote['PA-b'].at(-1) > {low}"):
                    break
                a.wait_for_timeout(1000)
            wait_for(a, f"log.remote['PA-b'].at(-1) > {low}", "A sees B's level rise again")

            # B's connection drops (A hangs up): B's own level reads 0 in that very turn
            a.evaluate("window.pc.close()")
            dropped = wait_for(
                b, "log.states.find((s) => ['disconnected', 'failed', 'closed'].includes(s.state))",
                "B's peer connection notices the drop", timeout=60)
            assert dropped["local"] == 0, b.evaluate("window.log")
            assert b.evaluate("room.localParticipant.networkQualityLevel") == 0
            print(f"\nB good {good}, A saw B fall to {low} {fall_s:.2f}s after the degraded "
                  f"samples were posted; B's pc went {dropped['state']}: local level 0 in the "
                  f"same turn; A's log of B {a.evaluate('log.remote')['PA-b']}")
        finally:
            browser.close()
