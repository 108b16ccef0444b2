"""Adapters from real browser stats to ``netquality.stats.v1`` samples.

- :mod:`pipelines.adapters.getstats`: one W3C ``RTCStatsReport`` snapshot -> one sample.
- :mod:`pipelines.adapters.rtcstats`: a jitsi rtcstats-server dump -> samples per peer
  connection, with the delta compression undone and the connection state tracked.
"""

from pipelines.adapters.getstats import (
    candidate_pair_from_report,
    inbound_tracks,
    map_connection_state,
    normalize_report,
    outbound_tracks,
    report_timestamp,
    sample_from_getstats_file,
    sample_from_report,
    selected_candidate_pair,
)
from pipelines.adapters.rtcstats import (
    RtcstatsLineError,
    decompress,
    samples_from_rtcstats,
    samples_from_rtcstats_file,
)

__all__ = [
    "RtcstatsLineError",
    "candidate_pair_from_report",
    "decompress",
    "inbound_tracks",
    "map_connection_state",
    "normalize_report",
    "outbound_tracks",
    "report_timestamp",
    "sample_from_getstats_file",
    "sample_from_report",
    "samples_from_rtcstats",
    "samples_from_rtcstats_file",
    "selected_candidate_pair",
]
