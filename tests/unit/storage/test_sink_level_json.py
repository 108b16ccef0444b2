"""``level_change_row_from_json``: a level event's bytes -> its ``level_changes`` row with the
``stats`` text cut from the bytes, equal to decoding with the contract and re-encoding, and
judged by the contract (same verdict, same error) on any input."""

from __future__ import annotations

import json
import typing
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.contracts import ContractError, LevelEvent, decode_level, encode
from pipelines.contracts.level import (
    BandwidthStats,
    ComponentStats,
    LatencyStats,
    LossStats,
    MediaLevels,
)
from pipelines.quality import Engine
from pipelines.storage.level_json import (
    STATS_FIELDS,
    RawStatsLevelEvent,
    RawStatsMedia,
    StatsTwin,
    level_change_row_from_json,
)
from pipelines.storage.rows import level_change_row, stats_json
from pipelines.testing import Conditions, ScriptedParticipant, scripted_session


def _events() -> list[LevelEvent]:
    people = [ScriptedParticipant(f"PJ{i}", publish_video=i % 2 == 0) for i in range(6)]
    samples = [
        p.step(Conditions(loss=0.1, rtt=0.3) if (step + i) % 3 == 0 else Conditions())
        for step in range(8)
        for i, p in enumerate(people)
    ]
    engine = Engine()
    events = engine.feed_batch(samples)
    expired = engine.sweep(max(e.timestamp for e in events) + 10**9)  # departed, by expiry
    return events + expired + Engine().feed_batch(scripted_session())


EVENTS = _events()


def _old(value: Any) -> tuple[Any, ...]:
    return level_change_row(decode_level(value))


def _twins() -> list[tuple[Any, Any]]:
    stats = {f.name: f.type for f in msgspec.structs.fields(StatsTwin)}
    return [
        (RawStatsLevelEvent, LevelEvent),
        (RawStatsMedia, MediaLevels),
        (StatsTwin, ComponentStats),
        *(
            (typing.get_args(stats[name])[0], kind)
            for name, kind in (("bandwidth", BandwidthStats), ("fraction_lost", LossStats),
                               ("latency", LatencyStats))
        ),
    ]  # fmt: skip


def test_the_twins_have_the_contracts_fields():
    nested = {"audio", "video", "bandwidth", "fraction_lost", "latency"}
    for twin, kind in _twins():
        got = msgspec.structs.fields(twin)
        want = msgspec.structs.fields(kind)
        assert [(f.name, f.encode_name, f.required) for f in got] == [
            (f.name, f.encode_name, f.required) for f in want
        ]
        assert twin.__struct_config__.omit_defaults == kind.__struct_config__.omit_defaults
        for g, w in zip(got, want, strict=True):
            if twin is RawStatsMedia and g.name in STATS_FIELDS:
                assert g.type is msgspec.Raw and bytes(g.default) == b"null"
            elif g.name not in nested:
                assert (g.type, g.default) == (w.type, w.default)


def test_the_rows_of_the_workers_events_are_those_of_decoding_and_re_encoding():
    assert any(e.level < 5 for e in EVENTS) and any(e.departed for e in EVENTS)
    for e in EVENTS:
        value = encode(e)
        row = level_change_row_from_json(value)
        assert row[:-1] == level_change_row(e)[:-1] == _old(value)[:-1]
        assert json.loads(row[-1]) == json.loads(stats_json(e))
        # The same text, except where the engine put an int into a float field: the message
        # (and the column now) says 350000, re-encoding the decoded float said 350000.0.
        assert row[-1].replace(".0,", ",").replace(".0}", "}") == (
            stats_json(e).replace(".0,", ",").replace(".0}", "}")
        )
    assert sum(level_change_row_from_json(encode(e))[-1] == stats_json(e) for e in EVENTS) > (
        len(EVENTS) // 2
    )


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, "invalid_json"),
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b'{"schema": "netquality.level.v9"}', "unknown_schema"),
        (b" " * 200_000, "too_large"),
    ],
)
def test_undecodable_values_fail_as_the_contract_says(value, code):
    with pytest.raises(ContractError) as new:
        level_change_row_from_json(value)
    with pytest.raises(ContractError) as old:
        _old(value)
    assert (new.value.code, new.value.message) == (old.value.code, old.value.message)
    assert new.value.code == code


def test_invalid_utf8_inside_stats_falls_back_to_the_re_encoded_text():
    """Neither decoder checks UTF-8 in skipped unknown fields; the raw text must not carry
    it to Postgres, so such an event gets the re-encoded stats (without the unknown key)."""
    value = encode(EVENTS[0]).replace(b'"sendStats":{', b'"sendStats":{"junk":"\xff\xfe",', 1)
    assert b"junk" in value
    row = level_change_row_from_json(value)
    assert row == _old(value) and "junk" not in row[-1]


# -- any mutation of an event: the same verdict, the same error, the same row ----------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6,
)  # fmt: skip


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for key, child in node.items():
            out.extend(_paths(child, (*path, key)))
    return out


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[bytes, bool]:
    """An event's JSON with one value replaced, one key dropped or one key added, written
    compactly or not; and whether an unknown key landed inside the stats."""
    doc = json.loads(encode(draw(st.sampled_from(EVENTS))))
    path = draw(st.sampled_from(_paths(doc)[1:]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    unknown_in_stats = False
    if action == "replace":
        parent[path[-1]] = draw(_json_values)  # a dict there may bring unknown keys
        unknown_in_stats = any(k in ("sendStats", "recvStats") for k in path)
    elif action == "drop":
        del parent[path[-1]]
    else:
        parent[draw(st.text(min_size=1, max_size=6))] = draw(_json_values)
        unknown_in_stats = any(k in ("sendStats", "recvStats") for k in path[:-1])
    spaced = draw(st.booleans())
    text = json.dumps(doc, indent=1 if spaced else None, separators=None if spaced else (",", ":"))
    return text.encode(), unknown_in_stats


@settings(max_examples=400, deadline=None)
@given(_mutated())
def test_any_mutated_event_gets_the_contracts_verdict_and_the_same_row(drawn):
    value, unknown_in_stats = drawn
    try:
        old = _old(value)
    except ContractError as exc:
        with pytest.raises(ContractError) as new:
            level_change_row_from_json(value)
        assert (new.value.code, new.value.message) == (exc.code, exc.message)
        return
    row = level_change_row_from_json(value)
    assert row[:-1] == old[:-1]
    if not unknown_in_stats:  # the same JSON (the text keeps the producer's spacing)
        assert json.loads(row[-1]) == json.loads(old[-1])
