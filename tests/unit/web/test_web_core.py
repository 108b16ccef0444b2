"""Pure parts of the web service: token scopes, constant-time lookup, views, ranges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.config import Settings
from pipelines.contracts import LevelEvent, MediaLevels
from pipelines.contracts.level import (
    BandwidthStats,
    Cause,
    ComponentStats,
    LatencyStats,
    LossStats,
)
from pipelines.web.auth import (
    TokenConfigError,
    TokenRegistry,
    bearer_token,
    fingerprint,
    parse_tokens,
)
from pipelines.web.feed import merge_snapshot
from pipelines.web.pages import participant_row
from pipelines.web.views import (
    ParamError,
    bucket_seconds,
    limiting_metric,
    parse_instant,
    parse_range,
    parse_verbosity,
    shape,
    view_from_event,
)

A, B, C = "a" * 20, "b" * 20, "c" * 20


def test_tokens_parse_into_scopes() -> None:
    grants = parse_tokens(f"{A}=*;{B}=room:RM1; {C}=region:eu-west,room:RM9", "env")
    assert grants[A].everything
    assert grants[B].rooms == {"RM1"} and not grants[B].regions
    assert grants[C].regions == {"eu-west"} and grants[C].rooms == {"RM9"}
    assert grants[C].scopes == ["region:eu-west", "room:RM9"]


def test_region_scope_covers_its_rooms_only_when_the_region_is_known() -> None:
    grant = parse_tokens(f"{C}=region:eu-west", "env")[C]
    assert grant.covers_room("RM5", "eu-west")
    assert not grant.covers_room("RM5", "us-east")
    assert not grant.covers_room("RM5", None)
    assert grant.covers_region("eu-west") and not grant.covers_region("us-east")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("short=*", "shorter than 16"),
        (f"{A}", "expected token=scope"),
        (f"{A}=rooms:RM1", "is not '*'"),
        (f"{A}=room:", "is not '*'"),
    ],
)
def test_bad_token_config_is_refused_without_echoing_the_token(text: str, fragment: str) -> None:
    with pytest.raises(TokenConfigError) as info:
        parse_tokens(text, "NETQUALITY_WEB_TOKENS")
    assert fragment in str(info.value)
    assert A not in str(info.value) and "short" not in str(info.value).replace("shorter", "")


def test_registry_lookup_and_file_source(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text(f"# operators\n{B}=region:us-east\n")
    registry = TokenRegistry.from_sources(f"{A}=*", file)
    assert len(registry) == 2
    assert registry.lookup(A).everything  # type: ignore[union-attr]
    assert registry.lookup(B).regions == {"us-east"}  # type: ignore[union-attr]
    assert registry.lookup(A[:-1]) is None and registry.lookup("") is None
    assert registry.lookup(None) is None
    assert A not in repr(registry) and A not in repr(registry.lookup(A))
    assert registry.lookup(A).label == fingerprint(A)  # type: ignore[union-attr]
    with pytest.raises(TokenConfigError, match="NETQUALITY_WEB_TOKENS_FILE"):
        TokenRegistry.from_sources(None, tmp_path / "missing")


def test_settings_never_show_tokens_in_repr() -> None:
    settings = Settings.from_env({"NETQUALITY_WEB_TOKENS": f"{A}=*"})
    assert settings.web_tokens == f"{A}=*"
    assert A not in repr(settings)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None),
     (None, None), ("", None)],
)
def test_bearer_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def _event(level: int, ts: int, departed: bool = False) -> LevelEvent:
    send = ComponentStats(
        bandwidth=BandwidthStats(level=level, actual=1.0),
        fraction_lost=LossStats(level=5, fraction_lost=0.0),
        latency=LatencyStats(level=4, rtt=0.1),
    )
    return LevelEvent(
        schema="netquality.level.v1", event_id=f"P:{ts}", room_sid="R", participant_sid="P",
        region="eu", timestamp=ts, level=level, previous_level=5,
        audio=MediaLevels(send=5), video=MediaLevels(send=level, send_stats=send),
        limited_by="video.send.bandwidth", departed=departed,
    )


def test_views_are_cut_to_twilio_verbosity() -> None:
    view = view_from_event(_event(2, 1000))
    one, two, three = (shape(view, v) for v in (1, 2, 3))
    assert set(one) == {"participantSid", "roomSid", "eventId", "timestamp", "level",
                        "previousLevel", "departed"}
    assert two["video"] == {"send": 2, "recv": None} and two["limitedBy"] == view["limitedBy"]
    assert three["video"]["sendStats"]["bandwidth"]["actual"] == 1.0
    assert three["video"]["sendLimitedBy"] == "bandwidth"
    assert three["audio"]["sendStats"] is None


def test_an_upstream_cause_reaches_every_verbosity_and_the_room_page() -> None:
    cause = Cause(kind="upstream", participant_sid="PA02", track_sid="MT07")
    view = view_from_event(msgspec.structs.replace(_event(5, 1000), cause=cause))
    expected = {"kind": "upstream", "participantSid": "PA02", "trackSid": "MT07"}
    assert all(shape(view, v)["cause"] == expected for v in (1, 2, 3))
    assert "cause" not in shape(view_from_event(_event(5, 1000)), 1)
    assert "limited by PA02&#x27;s uplink" in participant_row(view)
    assert "uplink" not in participant_row(view_from_event(_event(5, 1000)))


def test_limiting_metric_is_the_lowest_level_first_on_ties() -> None:
    assert limiting_metric(None) is None
    assert limiting_metric({"latency": {"level": 2}, "bandwidth": {"level": 3}}) == "latency"
    assert limiting_metric({"latency": {"level": 5}, "bandwidth": {"level": 5}}) == "bandwidth"


def test_snapshot_prefers_newer_live_views_and_drops_departed() -> None:
    stored = [view_from_event(_event(5, 1000))]
    assert merge_snapshot(stored, [view_from_event(_event(1, 2000))])["P"]["level"] == 1
    assert merge_snapshot(stored, [view_from_event(_event(1, 500))])["P"]["level"] == 5
    assert merge_snapshot(stored, [view_from_event(_event(1, 2000, departed=True))]) == {}


NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_ranges_default_parse_and_refuse() -> None:
    kw = {"now": NOW, "default": timedelta(hours=1), "limit": timedelta(days=7)}
    span = parse_range(None, None, **kw)
    assert (span.start, span.end) == (NOW - timedelta(hours=1), NOW)
    span = parse_range("2026-11-23T10:00:00Z", "1795433400000", **kw)
    assert span.start == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert span.end == datetime(2026, 11, 23, 11, 30, tzinfo=UTC)
    assert parse_instant("2026-11-23T10:00:00 01:00", "from") == datetime(
        2026, 11, 23, 9, tzinfo=UTC)  # a '+' that arrived unencoded as a space
    assert parse_instant("2026-11-23T10:00", "from").tzinfo is UTC
    with pytest.raises(ParamError, match="before"):
        parse_range("2026-11-23T12:00:00Z", "2026-11-23T11:00:00Z", **kw)
    with pytest.raises(ParamError, match="limit"):
        parse_range("2026-11-01T00:00:00Z", None, **kw)
    with pytest.raises(ParamError, match="ISO 8601"):
        parse_range("last tuesday", None, **kw)
    with pytest.raises(ParamError, match="out of range"):
        parse_instant("99999999999999999999", "to")


def test_verbosity() -> None:
    assert [parse_verbosity(v) for v in (None, "", "1", "2", "3")] == [1, 1, 1, 2, 3]
    for bad in ("0", "4", "x", "1.0"):
        with pytest.raises(ParamError):
            parse_verbosity(bad)


@given(st.floats(min_value=1, max_value=7 * 86400), st.integers(min_value=10, max_value=1000))
def test_buckets_are_whole_minutes_and_bound_the_points(seconds: float, points: int) -> None:
    bucket = bucket_seconds(seconds, points)
    assert bucket % 60 == 0 and bucket >= 60
    assert seconds / bucket <= points
    assert bucket == 60 or seconds / (bucket - 60) > points  # the smallest such bucket
