"""``netquality.stats.batch.v1``: many stats samples in one Kafka message (the batch envelope).

Why: the stream processor pays a fixed cost per Kafka message (Faust's event machinery,
~200 us), far above the cost of scoring one sample (~20 us). A publisher that sends many
samples at once puts them in one envelope, grouped by the partition each sample's
``participantSid`` maps to (Kafka's default murmur2 partitioner), keyed by the first
sample's ``participantSid``. Bare ``netquality.stats.v1`` messages keep working.

Each sample is judged on its own: :func:`decode_stats_message` returns the valid samples and,
for each invalid one, its index and the reason, so one bad sample never costs the others.
An envelope that is not one (bad JSON, wrong schema, over the limits) is rejected whole.
"""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from pipelines.contracts.stats import StatsSample

STATS_BATCH_SCHEMA = "netquality.stats.batch.v1"
MAX_BATCH_SAMPLES = 1000
"""Samples per envelope: about one second of a busy SFU's participants on one partition."""
MAX_BATCH_BYTES = 1024 * 1024
"""Kafka's default ``max.message.bytes`` (1 MiB): an envelope must fit any default broker."""


class StatsBatch(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """Samples of one partition's participants; each participant's in time (``seq``) order."""

    schema: Literal["netquality.stats.batch.v1"]
    samples: Annotated[list[StatsSample], Meta(min_length=1, max_length=MAX_BATCH_SAMPLES)]


class RawStatsBatch(msgspec.Struct, gc=False):
    """The envelope with its samples still undecoded, to judge each sample on its own."""

    schema: Literal["netquality.stats.batch.v1"]
    samples: Annotated[list[msgspec.Raw], Meta(min_length=1, max_length=MAX_BATCH_SAMPLES)]
