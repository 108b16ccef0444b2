"""Sink row building (pure): JSON text columns, the current-level projection."""

from __future__ import annotations

import json

import msgspec

from pipelines.quality import Engine
from pipelines.storage.rows import (
    current_level_row,
    current_level_row_from_history,
    level_change_row,
    stats_json,
)
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
