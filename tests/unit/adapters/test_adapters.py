"""Adapters from real browser stats (tests/fixtures, see ATTRIBUTION.md) to stats samples.

Expected numbers were read by hand from the fixture files; the line numbers in comments are
1-based lines of the rtcstats dumps.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from pipelines.adapters import (
    RtcstatsLineError,
    decompress,
    map_connection_state,
    normalize_report,
    sample_from_getstats_file,
    sample_from_report,
    samples_from_rtcstats,
    samples_from_rtcstats_file,
    selected_candidate_pair,
)
from pipelines.contracts import StatsSample, decode_stats, encode
from pipelines.demo_data import RTCSTATS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DUMPS = RTCSTATS
SNAPSHOTS = FIXTURES / "getstats"

# Samples per dump = getstats lines (SOURCES.md gives 81, 34, 13, 19, -, 20).
DUMP_SAMPLE_COUNTS = {
    "google-standard-stats-p2p": 81,
    "google-standard-stats-sfu": 34,
    "chrome-relay": 13,
    "chrome-standard-pc-failed": 19,
    "firefox97-standard-stats-sfu": 8,
    "safari-relay": 20,
}
IDENTITY: dict[str, Any] = {
    "room_sid": "RM01",
    "participant_sid": "PA01",
    "region": "us1",
    "seq": 1,
}


def _dump(name: str) -> list[StatsSample]:
    return list(samples_from_rtcstats_file(DUMPS / name))


def _by_participant(samples: list[StatsSample]) -> dict[str, list[StatsSample]]:
    out: dict[str, list[StatsSample]] = defaultdict(list)
    for sample in samples:
        out[sample.participant_sid].append(sample)
    return out


def _snapshot(name: str) -> Any:
    return json.loads((SNAPSHOTS / name).read_text(encoding="utf-8"))


def _stat(objects: list[dict[str, Any]], stat_id: str) -> dict[str, Any]:
    return next(s for s in objects if s["id"] == stat_id)


# --- every dump --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DUMP_SAMPLE_COUNTS))
def test_every_dump_converts_into_valid_samples(name: str) -> None:
    samples = _dump(name)
    assert len(samples) == DUMP_SAMPLE_COUNTS[name]
    for sample in samples:
        assert decode_stats(encode(sample)) == sample
        assert sample.room_sid == name
        assert sample.participant_sid.startswith(f"{name}-PC_")


@pytest.mark.parametrize("name", sorted(DUMP_SAMPLE_COUNTS))
def test_seq_counts_per_peer_connection_and_time_moves_forward(name: str) -> None:
    for samples in _by_participant(_dump(name)).values():
        assert [s.seq for s in samples] == list(range(1, len(samples) + 1))
        times = [s.timestamp for s in samples]
        assert times == sorted(times)


@pytest.mark.parametrize(
    "name",
    [
        "google-standard-stats-p2p",
        "google-standard-stats-sfu",
        "chrome-relay",
        "firefox97-standard-stats-sfu",
        "safari-relay",
    ],
)
def test_counters_never_decrease_per_track_in_a_healthy_dump(name: str) -> None:
    last: dict[tuple[str, str, str], tuple[int, ...]] = {}
    checked = 0
    for sample in _dump(name):
        rows: list[tuple[str, str, tuple[int, ...]]] = [
            ("out", t.track_sid, (t.bytes_sent, t.packets_sent)) for t in sample.outbound
        ]
        rows += [
            ("in", t.track_sid, (t.bytes_received, t.packets_received, t.packets_lost))
            for t in sample.inbound
        ]
        for direction, track_sid, counters in rows:
            key = (sample.participant_sid, direction, track_sid)
            if key in last:
                assert all(now >= before for now, before in zip(counters, last[key], strict=True))
                checked += 1
            last[key] = counters
    assert checked > 0


def test_track_sids_are_unique_per_direction_in_every_sample() -> None:
    for name in DUMP_SAMPLE_COUNTS:
        for sample in _dump(name):
            outbound = [t.track_sid for t in sample.outbound]
            inbound = [t.track_sid for t in sample.inbound]
            assert len(set(outbound)) == len(outbound)
            assert len(set(inbound)) == len(inbound)


# --- specific dumps ----------------------------------------------------------------------------


def test_p2p_dump_has_audio_and_video_both_ways_on_both_peer_connections() -> None:
    per_pc = _by_participant(_dump("google-standard-stats-p2p"))
    assert set(per_pc) == {"google-standard-stats-p2p-PC_0", "google-standard-stats-p2p-PC_1"}
    for samples in per_pc.values():
        sent = {t.kind for s in samples for t in s.outbound}
        received = {t.kind for s in samples for t in s.inbound}
        assert sent == {"audio", "video"}
        assert received == {"audio", "video"}


def test_p2p_dump_hand_checked_values() -> None:
    pc1 = _by_participant(_dump("google-standard-stats-p2p"))["google-standard-stats-p2p-PC_1"]
    second = pc1[1]  # line 96
    assert second.timestamp == 1605197601950
    assert second.candidate_pair is not None
    assert second.candidate_pair.available_outgoing_bitrate == 4263500
    assert second.candidate_pair.current_round_trip_time == 0.064
    # Chrome 99 simulcast: three layers of one camera track, each its own stream.
    video = [t for t in second.outbound if t.kind == "video"]
    assert sorted(t.frame_width for t in video) == [320, 640, 1280]
    assert len({t.track_sid for t in video}) == 3


def test_failed_dump_ends_failed_after_being_connected() -> None:
    samples = _dump("chrome-standard-pc-failed")
    assert samples[-1].participant_sid == "chrome-standard-pc-failed-PC_2"
    assert samples[-1].connection_state == "failed"
    assert any(s.connection_state == "connected" for s in samples[:-1])
    per_pc = _by_participant(samples)
    # PC_1/PC_2: ICE "checking" -> (line 199/200) ICE "disconnected" + PC "failed".
    for pc in ("PC_1", "PC_2"):
        states = [s.connection_state for s in per_pc[f"chrome-standard-pc-failed-{pc}"]]
        assert states == ["connecting"] + ["failed"] * 5
    # PC_0: first getstats (line 193) sits between ICE "connected" and PC "connected".
    states = [s.connection_state for s in per_pc["chrome-standard-pc-failed-PC_0"]]
    assert states == ["connecting"] + ["connected"] * 6


def test_firefox_dump_has_no_candidate_pair_but_full_tracks() -> None:
    samples = _dump("firefox97-standard-stats-sfu")
    assert all(s.candidate_pair is None for s in samples)
    second = samples[1]  # line 47
    outbound = {t.track_sid: t for t in second.outbound}
    assert outbound["350db97f"].kind == "audio"
    assert (outbound["350db97f"].bytes_sent, outbound["350db97f"].packets_sent) == (36205, 484)
    # Three simulcast layers, each with its own remote-inbound-rtp found through localId.
    remote = outbound["d10607b3"].remote
    assert remote is not None
    assert remote.round_trip_time == 0.039
    assert remote.packets_lost == 0
    inbound = {t.track_sid: t for t in second.inbound}
    assert inbound["77d9a2d7"].bytes_received == 35268
    assert inbound["77d9a2d7"].jitter == 0.003


def test_firefox_first_report_skips_streams_without_counters() -> None:
    # Line 45: the video outbound-rtp stats (1a04f3a3, ...) have no bytesSent/packetsSent yet.
    first = _dump("firefox97-standard-stats-sfu")[0]
    assert first.outbound == []
    assert first.connection_state == "connected"


def test_chrome_relay_hand_checked_values() -> None:
    samples = _dump("chrome-relay")
    second = samples[1]  # line 40
    assert second.timestamp == 1697705732114
    assert second.candidate_pair is not None
    assert second.candidate_pair.available_outgoing_bitrate == 1076166
    assert second.candidate_pair.current_round_trip_time == 0.025
    [video] = second.outbound
    assert video.track_sid == "mid:1"
    assert (video.bytes_sent, video.packets_sent) == (625916, 803)
    assert video.target_bitrate == 560000
    assert (video.frame_width, video.frame_height) == (640, 360)
    assert video.remote is not None
    assert video.remote.round_trip_time == 0.025421
    assert video.remote.fraction_lost == 0
    # Line 44: the uplink squeezed; Chrome says so.
    squeezed = samples[5]
    assert squeezed.candidate_pair is not None
    assert squeezed.candidate_pair.available_outgoing_bitrate == 213509
    assert squeezed.outbound[0].target_bitrate == 202805
    assert squeezed.outbound[0].quality_limitation_reason == "bandwidth"
    assert squeezed.outbound[0].frame_width == 320


def test_delta_decompression_carries_fields_from_earlier_payloads() -> None:
    lines = (DUMPS / "chrome-relay").read_text(encoding="utf-8").splitlines()
    pair_id, outbound_id = "CPfJfiL0UU_pjplYfUx", "OT01V2007858786"
    line_43 = json.loads(lines[42])[2]
    assert "availableOutgoingBitrate" not in line_43[pair_id]  # unchanged since line 42
    line_51 = json.loads(lines[50])[2]
    assert "mid" not in line_51[outbound_id] and "kind" not in line_51[outbound_id]  # line 39 only

    samples = _dump("chrome-relay")
    assert samples[4].candidate_pair is not None
    assert samples[4].candidate_pair.available_outgoing_bitrate == 1174987  # from line 42
    assert samples[3].outbound[0].target_bitrate == 560000  # from line 40, absent in 41 and 42
    last = samples[-1].outbound[0]
    assert (last.track_sid, last.kind) == ("mid:1", "video")


def test_decompress_removes_missing_ids_and_resolves_zero_timestamps() -> None:
    lines = (DUMPS / "firefox97-standard-stats-sfu").read_text(encoding="utf-8").splitlines()
    first, second = json.loads(lines[44])[2], json.loads(lines[46])[2]
    report = decompress(decompress({}, first), second)
    pair = report["d1eaa3c9"]
    assert pair["bytesSent"] == 2637414  # changed at line 47
    assert pair["nominated"] is True  # only in line 45
    assert pair["timestamp"] == 1641861041232  # "timestamp": 0 -> the payload's sample time
    assert report["abd81079"]["timestamp"] == 1641861041150  # its own RTCP time is kept
    assert report["d10607b3"]["timestamp"] == 1641861041232

    gone = {sid: stats for sid, stats in second.items() if sid != "ff7a255f"}
    assert "ff7a255f" not in decompress(report, gone)
    assert "ff7a255f" in decompress(report, gone, drop_missing=False)
    assert report["d1eaa3c9"]["bytesSent"] == 2637414  # inputs are not mutated


def test_safari_sender_wide_target_is_counted_once() -> None:
    second = _dump("safari-relay")[1]  # line 41
    assert second.candidate_pair is not None
    assert second.candidate_pair.available_outgoing_bitrate == 609468
    video = [t for t in second.outbound if t.kind == "video"]
    # Safari puts 527628 on every layer; the unused 0-byte layer is dropped.
    assert [t.target_bitrate for t in video] == [527628, None]
    assert [t.frame_width for t in video] == [320, 640]


def test_safari_brief_disconnection_between_samples_leaves_them_connected() -> None:
    # Lines 55-58: disconnected and back within 0.5 s, no getstats in between.
    samples = _dump("safari-relay")
    assert {s.connection_state for s in samples} == {"connected"}


def test_malformed_line_raises_with_its_line_number() -> None:
    lines = (DUMPS / "chrome-relay").read_text(encoding="utf-8").splitlines()
    lines[39] = lines[39][:100]  # line 40, a getstats line, cut short
    with pytest.raises(RtcstatsLineError) as caught:
        list(samples_from_rtcstats(lines, dump_name="chrome-relay"))
    assert caught.value.line_number == 40
    assert "line 40" in str(caught.value)
    assert "invalid_json: Input data was truncated" in str(caught.value)


def test_malformed_lines_can_be_reported_and_skipped() -> None:
    lines = (DUMPS / "chrome-relay").read_text(encoding="utf-8").splitlines()
    lines[39] = "not json"
    lines.insert(5, '{"an": "object, not an array"}')
    errors: list[RtcstatsLineError] = []
    samples = list(samples_from_rtcstats(lines, dump_name="x", on_error=errors.append))
    assert [e.line_number for e in errors] == [6, 41]
    assert len(samples) == 12
    assert [s.seq for s in samples] == list(range(1, 13))


def test_unknown_methods_and_blank_lines_are_skipped() -> None:
    lines = (DUMPS / "chrome-relay").read_text(encoding="utf-8").splitlines()
    lines[1:1] = ["", '["someFutureMethod", "PC_0", {"x": 1}, 1697705722200]']
    samples = list(samples_from_rtcstats(lines, dump_name="relay", room_sid="RM9", region="eu1"))
    assert len(samples) == 13
    assert {(s.room_sid, s.region, s.participant_sid) for s in samples} == {
        ("RM9", "eu1", "relay-PC_0")
    }


# --- getStats snapshots --------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SNAPSHOTS.glob("*.json")), ids=lambda p: p.name)
def test_every_snapshot_file_converts(path: Path) -> None:
    sample = sample_from_getstats_file(path, region="us1", seq=3)
    assert decode_stats(encode(sample)) == sample
    assert (sample.participant_sid, sample.seq) == (path.stem, 3)


def test_list_of_stats_objects_shape() -> None:
    sample = sample_from_report(_snapshot("second.json"), **IDENTITY)
    # One stray codec entry says 1676056705815; the report's own time is the common one.
    assert sample.timestamp == 1675795300258
    assert sample.candidate_pair is not None
    assert sample.candidate_pair.available_outgoing_bitrate == 5444307
    assert sample.candidate_pair.current_round_trip_time == 0.07
    outbound = {t.track_sid: t for t in sample.outbound}
    assert outbound["mid:video"].remote is not None
    assert outbound["mid:video"].remote.round_trip_time == 0.068
    assert outbound["mid:audio"].remote is not None
    assert outbound["mid:audio"].remote.fraction_lost == 0
    assert outbound["mid:video"].target_bitrate == 1400000
    # Two pre-allocated audio receivers never got a packet and are left out.
    assert sorted(t.track_sid for t in sample.inbound) == [
        "mid:audio",
        "mid:video_1",
        "mid:video_2",
    ]


def test_key_value_shape() -> None:
    sample = sample_from_report(_snapshot("mock-spec-stats-2.json"), **IDENTITY)
    assert sample.candidate_pair is not None
    assert sample.candidate_pair.available_outgoing_bitrate == 1777375
    assert sample.candidate_pair.current_round_trip_time == 0.026
    lost = {t.kind: t.packets_lost for t in sample.inbound}
    assert lost == {"audio": 1, "video": 18}
    rtts = {t.kind: t.remote.round_trip_time for t in sample.outbound if t.remote}
    assert rtts == {"audio": 0.052, "video": 0.053}
    # Older Chrome names tracks through the "track" stats.
    assert {t.track_sid for t in sample.inbound} == {
        "c6e25c3b-6ab3-4a84-8469-2fec574ffc94",
        "83d46c2c-5348-4902-a26a-d405c8e968de",
    }


def test_three_shapes_give_the_same_sample() -> None:
    objects = _snapshot("first.json")
    as_dict = {s["id"]: s for s in objects}
    as_entries = [{"key": s["id"], "value": s} for s in objects]
    samples = [sample_from_report(shape, **IDENTITY) for shape in (objects, as_dict, as_entries)]
    assert samples[0] == samples[1] == samples[2]
    assert samples[0].timestamp == 1675795290008  # 1675795290007.673 rounded


def test_unknown_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an RTCStatsReport"):
        normalize_report("getStats")


def test_values_the_contract_forbids_are_clamped() -> None:
    objects = copy.deepcopy(_snapshot("second.json"))
    _stat(objects, "ITaudio1V1830887144")["packetsLost"] = -3  # RTP duplicates do this
    _stat(objects, "RIV1063670694")["fractionLost"] = 1.5
    _stat(objects, "RIA1219987693")["packetsLost"] = -1
    sample = sample_from_report(objects, **IDENTITY)
    assert decode_stats(encode(sample)) == sample
    inbound = {t.track_sid: t for t in sample.inbound}
    assert inbound["mid:video_2"].packets_lost == 0
    outbound = {t.track_sid: t for t in sample.outbound}
    assert outbound["mid:video"].remote is not None
    assert outbound["mid:video"].remote.fraction_lost == 1
    assert outbound["mid:audio"].remote is not None
    assert outbound["mid:audio"].remote.packets_lost == 0


def test_missing_counters_skip_only_that_track() -> None:
    objects = copy.deepcopy(_snapshot("second.json"))
    del _stat(objects, "OTaudio1V1063670694")["bytesSent"]
    del _stat(objects, "ITaudio1V3534943364")["packetsLost"]
    sample = sample_from_report(objects, **IDENTITY)
    assert [t.track_sid for t in sample.outbound] == ["mid:audio"]
    assert sorted(t.track_sid for t in sample.inbound) == ["mid:audio", "mid:video_2"]


def test_rtx_companion_stream_is_dropped() -> None:
    objects = copy.deepcopy(_snapshot("second.json"))
    video = _stat(objects, "OTaudio1V1063670694")
    video["rtxSsrc"] = 42
    objects.append({**video, "id": "OTrtx", "ssrc": 42, "mid": "rtx", "bytesSent": 9000})
    sample = sample_from_report(objects, **IDENTITY)
    assert sorted(t.track_sid for t in sample.outbound) == ["mid:audio", "mid:video"]


def test_firefox_selected_flag_picks_the_pair() -> None:
    lines = (DUMPS / "firefox97-standard-stats-sfu").read_text(encoding="utf-8").splitlines()
    report = decompress({}, json.loads(lines[44])[2])
    pair = selected_candidate_pair(report)
    assert pair is report["d1eaa3c9"]  # selected: true; a9db0875 is nominated but in progress


def test_explicit_identity_state_and_timestamp_are_used() -> None:
    sample = sample_from_report(
        _snapshot("first.json"), **IDENTITY, connection_state="reconnecting", timestamp=5
    )
    assert (sample.room_sid, sample.participant_sid, sample.region) == ("RM01", "PA01", "us1")
    assert (sample.connection_state, sample.timestamp) == ("reconnecting", 5)


def test_bad_connection_state_and_missing_timestamp_are_rejected() -> None:
    with pytest.raises(ValueError, match="connection_state"):
        sample_from_report(_snapshot("first.json"), **IDENTITY, connection_state="checking")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timestamp"):
        sample_from_report({"T01": {"type": "transport"}}, **IDENTITY)


# --- connection state ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("w3c", "ours"),
    [
        ("new", "new"),
        ("checking", "connecting"),
        ("connecting", "connecting"),
        ("connected", "connected"),
        ("completed", "connected"),
        ("disconnected", "reconnecting"),
        ("failed", "failed"),
        ("closed", "disconnected"),
    ],
)
def test_map_connection_state(w3c: str, ours: str) -> None:
    assert map_connection_state(w3c) == ours


def test_map_connection_state_rejects_unknown_values() -> None:
    with pytest.raises(ValueError, match="unknown W3C connection state"):
        map_connection_state("reconnecting")


def test_muted_local_tracks_are_marked_on_their_outbound_streams() -> None:
    """The app's mute state is not in getStats: the caller names the muted tracks' ids, and
    their outbound streams say ``muted`` (so that their silence is not a stall)."""
    objects = _snapshot("first.json")
    sources = [s for s in objects if s.get("type") == "media-source"]
    audio_source = next(s for s in sources if s["kind"] == "audio")
    sample = sample_from_report(
        objects, **IDENTITY, muted_tracks=frozenset({audio_source["trackIdentifier"]})
    )
    muted = [t for t in sample.outbound if t.muted]
    assert muted and all(t.kind == "audio" for t in muted)
    assert any(t.muted is None for t in sample.outbound)
    assert all(t.muted is None for t in sample_from_report(objects, **IDENTITY).outbound)
