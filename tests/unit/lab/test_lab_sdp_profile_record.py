"""The lab's pure parts besides the impairment model: SDP splicing, profiles, dump writing."""

from __future__ import annotations

import io
import json

import pytest

from pipelines.adapters.rtcstats import decompress, samples_from_rtcstats
from pipelines.lab.impairment import CLEAN, Impairment
from pipelines.lab.profile import (
    SCENARIOS,
    ProfileError,
    load_profile,
    profile_from_json,
    trace_profile,
)
from pipelines.lab.record import RtcstatsWriter, trim
from pipelines.lab.sdp import candidates, splice

OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host generation 0\r\n"
    "a=candidate:2 1 udp 2122194687 10.0.0.5 50001 typ host generation 0\r\n"
    "a=end-of-candidates\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
    "a=candidate:3 1 udp 1686052607 203.0.113.9 50002 typ srflx raddr 0.0.0.0 rport 0\r\n"
)


def test_splice_leaves_only_the_relay_candidate_in_every_section():
    out = splice(OFFER, 40001)
    assert candidates(out) == ["a=candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host"] * 2
    assert out.count("a=end-of-candidates") == 2
    assert "192.0.2.2" not in out and "203.0.113.9" not in out
    assert out.endswith("\r\n") and "\n" not in out.replace("\r\n", "")
    # Everything else is untouched and in order.
    rest = [ln for ln in OFFER.split("\r\n") if ln and not ln.startswith(("a=cand", "a=end"))]
    assert [ln for ln in out.split("\r\n") if ln and not ln.startswith(("a=cand", "a=end"))
            ] == rest


def test_every_scenario_starts_clean_and_impairs_after_the_ramp_up():
    for name, profile in SCENARIOS.items():
        assert profile.at(0).links == {} or all(i.clean for i in profile.at(0).links.values())
        if name != "clean":
            assert any(not imp.clean for s in profile.steps for imp in s.links.values())
            assert min(s.at_s for s in profile.steps if s.links) >= 20


def test_a_json_timeline_reads_and_unnamed_links_are_clean():
    p = profile_from_json({"name": "x", "duration_s": 30, "steps": [
        {"at": 0}, {"at": 10, "A": {"up": {"loss": 0.05, "burst": 3}}, "label": "bursty"},
        {"at": 20, "B": {"down": {"rate_kbps": 300}}}]})
    assert p.at(5).label == "clean"
    assert p.at(12).link("A", "up") == Impairment(loss=0.05, burst=3)
    assert p.at(25).link("A", "up") == CLEAN
    assert p.at(25).label == "B.down: 300 kbit/s cap"


@pytest.mark.parametrize("bad, says", [
    ([], "expected a JSON object"),
    ({"duration_s": 10}, "'steps'"),
    ({"duration_s": 0, "steps": [{}]}, "duration_s"),
    ({"duration_s": 10, "steps": [{"at": 5}, {"at": 1}]}, "time order"),
    ({"duration_s": 10, "steps": [{"A": {"sideways": {}}}]}, "'up' and/or 'down'"),
    ({"duration_s": 10, "steps": [{"A": {"up": {"loss": 2}}}]}, "loss"),
])
def test_bad_timelines_say_what_is_wrong(bad, says):
    with pytest.raises(ProfileError, match=says):
        profile_from_json(bad)


def test_unknown_profiles_and_traces_are_one_line_errors(tmp_path):
    with pytest.raises(ProfileError, match="unknown profile"):
        load_profile("no-such-thing")
    broken = tmp_path / "p.json"
    broken.write_text("{not json")
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(str(broken))
    with pytest.raises(ProfileError, match="no trace"):
        trace_profile("norway-3g/nope")


def test_a_capacity_trace_becomes_a_rate_profile():
    from pipelines.simulate.traces import load_traces

    name = sorted(n for n in load_traces() if n.startswith("norway-3g/"))[0]
    p = load_profile(f"trace:{name}", 30)
    rates = {p.at(t).link("A", "up").rate_kbps for t in range(20, 30)}
    assert None not in rates and all(r and r >= 64 for r in rates)
    assert p.at(5).link("A", "up") == CLEAN


REPORT = {
    "T01": {"type": "transport", "selectedCandidatePairId": "CP1", "dtlsState": "connected"},
    "CP1": {"type": "candidate-pair", "state": "succeeded", "nominated": True,
            "bytesSent": 1000, "bytesReceived": 900, "availableOutgoingBitrate": 1234567.891,
            "currentRoundTripTime": 0.0123456, "timestamp": 1.5, "priority": 99},
    "CP2": {"type": "candidate-pair", "state": "failed", "bytesSent": 0},
    "OV": {"type": "outbound-rtp", "kind": "video", "mid": "1", "ssrc": 5, "bytesSent": 5000,
           "packetsSent": 50, "remoteId": "RV", "targetBitrate": 800000.4,
           "qualityLimitationReason": "bandwidth", "encoderImplementation": "libvpx"},
    "RV": {"type": "remote-inbound-rtp", "kind": "video", "ssrc": 5, "localId": "OV",
           "fractionLost": 0.0703125, "packetsLost": 12, "roundTripTime": 0.30412},
    "CERT": {"type": "certificate", "fingerprint": "AB:CD"},
}


def test_trim_keeps_what_the_adapter_reads_rounded():
    out = trim(REPORT)
    assert set(out) == {"T01", "CP1", "OV", "RV"}  # no failed pair, no certificate
    assert out["CP1"]["availableOutgoingBitrate"] == 1235000
    assert out["CP1"]["currentRoundTripTime"] == 0.01235
    assert out["RV"]["fractionLost"] == 0.07031
    assert "encoderImplementation" not in out["OV"] and "priority" not in out["CP1"]


def test_a_written_dump_replays_to_the_same_samples_as_the_trimmed_reports():
    second = json.loads(json.dumps(REPORT))
    second["OV"].update(bytesSent=9000, packetsSent=90)
    second["RV"]["fractionLost"] = 0.1
    buffer = io.StringIO()
    writer = RtcstatsWriter(buffer, {"lab": {"profile": "test"}})
    writer.record("onconnectionstatechange", "A", "connected", 1000)
    writer.record("getstats", "A", REPORT, 2000)
    writer.record("getstats", "A", second, 3000)
    lines = buffer.getvalue().splitlines()
    delta = json.loads(lines[-1])[2]
    assert delta["CP1"] == {} and set(delta["OV"]) == {"bytesSent", "packetsSent"}
    rebuilt = decompress(decompress({}, json.loads(lines[-2])[2]), delta)
    assert {k: {f: v for f, v in s.items() if f != "timestamp"} for k, s in rebuilt.items()
            } == trim(second)
    samples = list(samples_from_rtcstats(lines, dump_name="run"))
    assert [s.participant_sid for s in samples] == ["run-A", "run-A"]
    assert samples[-1].connection_state == "connected"
    assert samples[-1].outbound[0].remote.fraction_lost == 0.1  # type: ignore[union-attr]
    assert samples[-1].timestamp == 3000
