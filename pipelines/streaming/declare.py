"""How the stages declare their Faust topics and tables, in one place.

Every netquality topic carries raw bytes (our own codecs decode them), and every table is a
``ChangelogStates`` over a bytes table whose changelog partitions follow the default
partitioner of the key, so that a key's state sits beside the input partition it comes from.
"""

from __future__ import annotations

from typing import Any

import faust

from pipelines.config import Settings
from pipelines.streaming.levels import default_partition
from pipelines.streaming.states import ChangelogStates


def raw_topic(
    app: faust.App, settings: Settings, name: str, *, internal: bool = False
) -> faust.TopicT:
    """A topic of raw keys and values with the configured partition count."""
    return app.topic(
        name,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=internal,
    )


def table_states(
    app: faust.App,
    settings: Settings,
    name: str,
    source: faust.TopicT,
    dump: Any,
    load: Any,
) -> ChangelogStates[Any]:
    """A changelog-backed table of states keyed like ``source``'s messages."""
    table = app.Table(
        name,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
    )
    return ChangelogStates(
        table,
        partition_of=lambda key: default_partition(key, settings.partitions),
        source_topic=source.get_topic_name(),
        dump=dump,
        load=load,
    )
