"""Message contracts: msgspec models that mirror the JSON Schema files in ``schemas/``.

One decoder per message kind; every rejection is a :class:`ContractError` with a message
that names the offending field, so it can be shown to a user or put in a dead letter.
"""

from pipelines.contracts.alert import AlertEvent, AlertParticipant
from pipelines.contracts.codec import (
    ContractError,
    decode_alert,
    decode_deadletter,
    decode_level,
    decode_stats,
    encode,
)
from pipelines.contracts.deadletter import (
    DeadLetter,
    DeadLetterError,
    DeadLetterSource,
    dead_letter_for,
    make_dead_letter,
)
from pipelines.contracts.level import (
    BandwidthStats,
    ComponentStats,
    LatencyStats,
    LevelEvent,
    LossStats,
    MediaLevels,
)
from pipelines.contracts.stats import (
    CandidatePair,
    InboundTrack,
    OutboundTrack,
    RemoteInbound,
    StatsSample,
)

__all__ = [
    "AlertEvent",
    "AlertParticipant",
    "BandwidthStats",
    "CandidatePair",
    "ComponentStats",
    "ContractError",
    "DeadLetter",
    "DeadLetterError",
    "DeadLetterSource",
    "InboundTrack",
    "LatencyStats",
    "LevelEvent",
    "LossStats",
    "MediaLevels",
    "OutboundTrack",
    "RemoteInbound",
    "StatsSample",
    "dead_letter_for",
    "decode_alert",
    "decode_deadletter",
    "decode_level",
    "decode_stats",
    "encode",
    "make_dead_letter",
]
