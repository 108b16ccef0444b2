"""Sink row building (pure): JSON text columns, the current-level projection."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.contracts import ContractError
from pipelines.quality import Engine
from pipelines.storage import rows
from pipelines.storage.rows import (
    current_level_row,
    current_level_row_from_history,
    level_change_row,
    ms_to_datetime,
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_MS = int((datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) / timedelta(milliseconds=1))
_LAST_MS = int((datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH)
               / timedelta(milliseconds=1))  # fmt: skip


@given(st.integers(_FIRST_MS, _LAST_MS))
def test_ms_to_datetime_is_exact_over_the_years_a_datetime_holds(ms):
    got = ms_to_datetime(ms)
    assert got == _EPOCH + timedelta(milliseconds=ms) and got.tzinfo is UTC
    assert ms_to_datetime(ms) == got  # the second again, now from the cache


@pytest.mark.parametrize("ms", [_FIRST_MS - 1, _LAST_MS + 1, 2**53 - 1, -(2**53) + 1])
def test_ms_outside_the_years_a_datetime_holds_are_a_contract_error(ms):
    with pytest.raises(ContractError, match="out of range") as caught:
        ms_to_datetime(ms)
    assert caught.value.code == "invalid_field"


def test_the_seconds_cache_stays_bounded():
    rows._SECONDS.clear()
    for second in range(rows._SECONDS_KEPT * 3):
        assert ms_to_datetime(second * 1000 + 7) == _EPOCH + timedelta(
            seconds=second, milliseconds=7
        )
        assert len(rows._SECONDS) <= rows._SECONDS_KEPT
