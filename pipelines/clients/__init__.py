"""Clients that put stats samples on the stats topic.

The public API for services that collect stats (an SFU, a signalling server):

- :class:`StatsPublisher`: validated, keyed, batched publishing with delivery reports;
- :class:`GetStatsSampler` and :func:`sample_from_report`: a W3C ``RTCStatsReport`` snapshot
  to a ``netquality.stats.v1`` sample (the same adapter ``netquality score`` uses);
- :func:`pack_envelopes` / :func:`partition_for`: the ``netquality.stats.batch.v1`` encoding;
- :class:`RoomLevels`: a room's levels for room services, current levels first, then changes.
"""

from pipelines.adapters.getstats import (
    map_connection_state,
    normalize_report,
    sample_from_getstats_file,
    sample_from_report,
)
from pipelines.clients.envelope import (
    BATCH_SCHEMA,
    MAX_ENVELOPE_BYTES,
    MAX_ENVELOPE_SAMPLES,
    Envelope,
    encode_envelope,
    pack_envelopes,
    partition_for,
)
from pipelines.clients.getstats import GetStatsSampler
from pipelines.clients.publisher import (
    DeliveryFailure,
    InvalidSampleError,
    PublishReport,
    Rejection,
    StatsPublisher,
    validate_sample,
)
from pipelines.clients.room import LevelChange, RoomFeedError, RoomLevels

__all__ = [
    "BATCH_SCHEMA",
    "MAX_ENVELOPE_BYTES",
    "MAX_ENVELOPE_SAMPLES",
    "DeliveryFailure",
    "Envelope",
    "GetStatsSampler",
    "InvalidSampleError",
    "LevelChange",
    "PublishReport",
    "Rejection",
    "RoomFeedError",
    "RoomLevels",
    "StatsPublisher",
    "encode_envelope",
    "map_connection_state",
    "normalize_report",
    "pack_envelopes",
    "partition_for",
    "sample_from_getstats_file",
    "sample_from_report",
    "validate_sample",
]
