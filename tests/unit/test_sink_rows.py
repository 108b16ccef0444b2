"""Sink row building (pure): JSON text columns, the current-level projection, one decode per
event value across the two level topics."""

from __future__ import annotations

import json

import msgspec
import pytest

from pipelines.contracts import ContractError, encode
from pipelines.quality import Engine
from pipelines.storage.rows import (
    current_level_row,
    current_level_row_from_history,
    level_change_row,
    stats_json,
)
from pipelines.storage.sink import RecentLevelRows
from pipelines.storage.writer import CURRENT_LEVELS, LEVEL_CHANGES
from pipelines.testing import Conditions, ScriptedParticipant, scripted_session


def _events():
    people = [ScriptedParticipant(f"PU{i}", publish_video=i % 2 == 0) for i in range(6)]
    samples = [
        p.step(Conditions(loss=0.1) if (step + i) % 3 == 0 else Conditions())
        for step in range(8)
        for i, p in enumerate(people)
    ]
    return Engine().feed_batch(samples) + Engine().feed_batch(scripted_session())


def test_stats_json_is_the_events_detailed_stats():
    events = _events()
    assert any(e.level < 5 for e in events)
    for e in events:
        want = {
            media: {
                "sendStats": msgspec.to_builtins(getattr(e, media).send_stats),
                "recvStats": msgspec.to_builtins(getattr(e, media).recv_stats),
            }
            for media in ("audio", "video")
        }
        assert json.loads(stats_json(e)) == want


def test_the_current_level_row_is_a_projection_of_the_history_row():
    for e in _events():
        assert current_level_row_from_history(level_change_row(e)) == current_level_row(e)


def test_merge_statements_skip_identical_rows_and_history_does_nothing_on_conflict():
    current = CURRENT_LEVELS.merge_sql().as_string(None)
    assert "IS DISTINCT FROM" in current and '"current_levels"."ts" <= EXCLUDED."ts"' in current
    history = LEVEL_CHANGES.merge_sql().as_string(None)
    assert history.endswith("DO NOTHING") and "FORMAT BINARY" in LEVEL_CHANGES.copy_sql(
        "level_changes"
    ).as_string(None)


def test_a_value_is_decoded_once_for_this_batch_and_the_next():
    event = _events()[0]
    value = encode(event)
    rows = RecentLevelRows()
    first = rows.history_row(value)
    assert first == level_change_row(event)
    assert rows.history_row(bytes(value)) is first  # the copy from the other topic
    rows.next_batch()
    assert rows.history_row(bytes(value)) is first  # one batch later: still known
    rows.next_batch()
    rows.next_batch()
    again = rows.history_row(bytes(value))
    assert again == first and again is not first  # forgotten after that: decoded anew


def test_an_undecodable_value_fails_the_same_way_every_time():
    rows = RecentLevelRows()
    for _ in range(2):
        with pytest.raises(ContractError) as caught:
            rows.history_row(b'{"schema": "netquality.level.v9"}')
        assert caught.value.code == "unknown_schema"
    with pytest.raises(ContractError) as caught:
        rows.history_row(None)
    assert caught.value.code == "invalid_json"
