"""Hostile input: a corpus of bad messages, each dead-lettered with its precise reason, mixed
into valid traffic to a real worker; and hypothesis fuzzing of the decoder and the engine."""

from __future__ import annotations

import base64
import contextlib
import json
from collections import Counter

import msgspec
from faults_support import record_figures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.contracts import ContractError, decode_deadletter, decode_level, decode_stats, encode
from pipelines.quality import Engine
from pipelines.testing import Conditions, ScriptedParticipant


def _valid() -> dict:
    p = ScriptedParticipant("PH-x", publish_video=True, subscribe_audio=1, subscribe_video=1)
    return json.loads(encode(p.step()))


def _with(**changes) -> bytes:
    sample = _valid()
    sample.update(changes)
    return json.dumps(sample).encode()


def _track_field(direction: str, key: str, value) -> bytes:
    sample = _valid()
    sample[direction][0][key] = value
    return json.dumps(sample).encode()


def hostile_corpus() -> list[tuple[str, bytes | None, str, str]]:
    """(name, bytes, expected code, a fragment the reason must contain) for each bad message."""
    valid = json.dumps(_valid()).encode()
    many_tracks = _valid()
    many_tracks["outbound"] = many_tracks["outbound"] * 2000
    sixty_five = _valid()
    sixty_five["inbound"] = (sixty_five["inbound"] * 65)[:65]
    missing = _valid()
    del missing["participantSid"]
    return [
        ("truncated JSON", valid[: len(valid) // 2], "invalid_json", "truncated"),
        ("empty value", b"", "invalid_json", "truncated"),
        ("null value (tombstone)", None, "invalid_json", "tombstone"),
        ("not JSON", b"hello world", "invalid_json", "malformed"),
        ("NaN literal", _with(candidatePair={"currentRoundTripTime": float("nan")}),
         "invalid_json", "malformed"),
        ("Infinity literal", _with(candidatePair={"availableOutgoingBitrate": float("inf")}),
         "invalid_json", "malformed"),
        ("invalid UTF-8 in a string", valid.replace(b'"PH-x"', b'"PH-\xff"'), "invalid_json",
         "UTF-8"),
        ("invalid UTF-8 bytes", b"\xff\xfe\x00garbage", "invalid_json", "malformed"),
        ("UTF-8 BOM", b"\xef\xbb\xbf" + valid, "invalid_json", "malformed"),
        ("deeply nested JSON", b'{"a":' * 20000 + b"1" + b"}" * 20000, "invalid_json",
         "nested too deeply"),
        ("deeply nested in a valid sample", valid[:-1] + b',"x":' + b"[" * 60000
         + b"]" * 60000 + b"}", "invalid_json", "nested too deeply"),
        ("megabyte payload", _with(padding="x" * 1_000_000), "too_large", "limit is"),
        ("thousands of tracks", json.dumps(many_tracks).encode(), "too_large", "limit is"),
        ("65 tracks", json.dumps(sixty_five).encode(), "invalid_field", "$.inbound"),
        ("unknown schema version", _with(schema="netquality.stats.v2"), "unknown_schema",
         "netquality.stats.v2"),
        ("no schema", json.dumps({k: v for k, v in _valid().items() if k != "schema"}).encode(),
         "invalid_field", "`schema`"),
        ("missing key", json.dumps(missing).encode(), "invalid_field", "`participantSid`"),
        ("JSON array", b"[1, 2, 3]", "invalid_field", "got `array`"),
        ("JSON null", b"null", "invalid_field", "got `null`"),
        ("wrong type: timestamp string", _with(timestamp="yesterday"), "invalid_field",
         "$.timestamp"),
        ("wrong type: seq float", _with(seq=1.5), "invalid_field", "$.seq"),
        ("wrong type: outbound object", _with(outbound={"a": 1}), "invalid_field", "$.outbound"),
        ("negative seq", _with(seq=-1), "invalid_field", "$.seq"),
        ("negative counter", _track_field("outbound", "bytesSent", -5), "invalid_field",
         "$.outbound[0].bytesSent"),
        ("counter beyond 2^53", _track_field("inbound", "packetsLost", 2**64), "invalid_field",
         "$.inbound[0].packetsLost"),
        ("absurd bitrate", _with(candidatePair={"availableOutgoingBitrate": 1e30}),
         "invalid_field", "availableOutgoingBitrate"),
        ("absurd RTT", _with(candidatePair={"currentRoundTripTime": 1e9}), "invalid_field",
         "currentRoundTripTime"),
        ("fraction lost above 1", _track_field("outbound", "remote", {"fractionLost": 7}),
         "invalid_field", "fractionLost"),
        ("unknown connection state", _with(connectionState="on fire"), "invalid_field",
         "$.connectionState"),
        ("unknown track kind", _track_field("inbound", "kind", "hologram"), "invalid_field",
         "$.inbound[0].kind"),
        ("empty participant id", _with(participantSid=""), "invalid_field", "participantSid"),
        ("huge participant id", _with(participantSid="P" * 10_000), "invalid_field",
         "participantSid"),
    ]


CORPUS = hostile_corpus()


def test_every_hostile_message_is_rejected_with_its_precise_reason():
    for name, data, code, fragment in CORPUS:
        try:
            decode_stats(data)
        except ContractError as exc:
            assert exc.code == code, (name, exc.code, exc.message)
            assert fragment in exc.message, (name, exc.message)
        else:
            raise AssertionError(f"{name} was accepted")


def test_decreasing_counters_are_a_reset_not_an_error():
    """Documented engine behaviour: a counter going down is a reset (a new RTP stream): the
    sample is accepted and scored from the next delta; levels stay in range, nothing raises."""
    p = ScriptedParticipant("PR1", publish_video=True)
    samples = [p.step() for _ in range(30)]
    base = {t.track_sid: (t.bytes_sent, t.packets_sent) for t in samples[9].outbound}
    for sample in samples[10:]:  # the client restarted its RTP streams: counters from ~0
        for track in sample.outbound:
            track.bytes_sent -= base[track.track_sid][0]
            track.packets_sent -= base[track.track_sid][1]
    assert samples[10].outbound[0].bytes_sent < samples[9].outbound[0].bytes_sent
    samples = [decode_stats(encode(s)) for s in samples]  # the decoder accepts them
    engine = Engine()
    events = engine.feed_batch(samples)
    assert engine.counts.ignored == 0
    assert all(0 <= e.level <= 5 for e in events)
    assert engine.states["PR1"].seq == samples[-1].seq
    assert engine.states["PR1"].level == 5  # a good network after the reset scores as good
    assert engine.states["PR1"].level == Engine().feed_batch(samples[:10])[-1].level


# -- property-based fuzzing -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_decoder_raises_only_contract_errors_on_any_bytes(data):
    try:
        decode_stats(data)
    except ContractError as exc:
        assert exc.code in {"invalid_json", "invalid_field", "unknown_schema", "too_large"}


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_decoder_on_mutated_samples_raises_only_contract_errors(data):
    sample = _valid()
    paths = [p for p in _paths(sample) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        target = sample
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue
    with contextlib.suppress(ContractError):
        decode_stats(json.dumps(sample).encode())


conditions = st.builds(
    Conditions,
    uplink=st.floats(0, 1e8),
    downlink=st.floats(0, 1e8),
    loss=st.floats(0, 1),
    rtt=st.floats(0, 10),
    jitter=st.floats(0, 5),
    state=st.sampled_from(["connected", "reconnecting", "disconnected", "failed", "connecting"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(conditions, min_size=1, max_size=30),
    st.lists(st.integers(0, 29), max_size=10),
    st.lists(st.tuples(st.integers(0, 29), st.integers(-10**7, 10**7)), max_size=5),
)
def test_engine_never_crashes_and_levels_stay_in_range(conds, shuffled, skews):
    """Any decodable sample stream (shuffled, duplicated, clock-skewed) scores without error."""
    p = ScriptedParticipant("PF1", publish_video=True, subscribe_audio=1, subscribe_video=1)
    samples = [p.step(c) for c in conds]
    for i in shuffled:  # duplicates / out of order
        samples.append(samples[i % len(samples)])
    for i, delta in skews:  # clock skew, even backwards
        s = samples[i % len(samples)]
        samples[i % len(samples)] = msgspec.structs.replace(
            s, timestamp=max(0, s.timestamp + delta)
        )
    samples = [decode_stats(encode(s)) for s in samples]  # only what the decoder lets through
    engine = Engine()
    events = engine.feed_batch(samples)
    events += engine.sweep(samples[-1].timestamp + 10**9)
    for event in events:
        assert 0 <= event.level <= 5
        for direction in (event.audio, event.video):
            if direction is not None:
                assert direction.send is None or 0 <= direction.send <= 5
                assert direction.recv is None or 0 <= direction.recv <= 5


# -- a real worker ------------------------------------------------------------------------------


def _by_participant(events):
    out: dict[str, list] = {}
    for e in events:
        if not e.event_id.endswith(":stale"):
            out.setdefault(e.participant_sid, []).append(msgspec.to_builtins(e))
    return out


def test_hostile_corpus_mixed_into_traffic_reaches_the_dead_letter_topic(
    worker_settings, kafka_io, start_worker, no_staleness
):
    settings_ = worker_settings.with_overrides(thresholds_file=no_staleness)
    people = [ScriptedParticipant(f"PV{i:02d}", publish_video=i % 2 == 0) for i in range(20)]
    samples = [
        p.step(Conditions(loss=0.2 if (t + i) % 7 == 0 else 0.0))
        for t in range(15)
        for i, p in enumerate(people)
    ]
    from pipelines.quality import load_thresholds

    expected = _by_participant(Engine(load_thresholds(no_staleness)).feed_batch(samples))
    total = sum(len(v) for v in expected.values())
    valid = [(s.participant_sid.encode(), encode(s)) for s in samples]
    bad = [(f"PX{i}".encode(), data) for i, (_, data, _, _) in enumerate(CORPUS)]
    mixed: list = []
    step = max(1, len(valid) // len(bad))
    for i, record in enumerate(bad):
        mixed += [*valid[i * step:(i + 1) * step], record]
    mixed += valid[len(bad) * step :]
    kafka_io.produce(settings_.topic_stats, mixed)
    worker = start_worker(settings_)

    letters = kafka_io.read(
        settings_.topic_deadletter, until=lambda r: len(r) >= len(bad), timeout=120
    )
    decoded = [decode_deadletter(r.value) for r in letters]
    assert len(decoded) == len(bad)
    by_key = {d.source.key: d for d in decoded}
    for i, (name, data, code, fragment) in enumerate(CORPUS):
        letter = by_key[f"PX{i}"]
        assert letter.error.code == code, name
        assert fragment in letter.error.message, (name, letter.error.message)
        kept = base64.b64decode(letter.original)
        assert letter.original_size == len(data or b""), name
        assert kept == (data or b"")[: len(kept)], name
        assert letter.truncated == (len(kept) < len(data or b"")), name
    levels = kafka_io.read(
        settings_.topic_levels,
        until=lambda r: sum(1 for x in r if not x.key.startswith(b"PX")) >= total,
        timeout=120,
    )
    assert _by_participant(decode_level(r.value) for r in levels) == expected
    assert worker.alive, worker.log_tail()
    record_figures(
        "hostile_input",
        {
            "hostile_messages": len(bad),
            "valid_samples": len(valid),
            "dead_letters": len(decoded),
            "codes": dict(Counter(d.error.code for d in decoded)),
            "worker_crashes": 0,
            "valid_events_equal_clean_run": True,
        },
    )
