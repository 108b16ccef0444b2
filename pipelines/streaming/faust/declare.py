"""How the stages declare their Faust topics, tables and agents, in one place.

Every netquality topic carries raw bytes (our own codecs decode them), and every table is a
``ChangelogStates`` over a bytes table whose changelog partitions follow the default
partitioner of the key, so that a key's state sits beside the input partition it comes from.
Every agent takes its input in batches through an :class:`OrderedIntake`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from pipelines.config import Settings
from pipelines.streaming.faust.intake import EventBatch, OrderedIntake, run_batches
from pipelines.streaming.faust.states import ChangelogStates
from pipelines.streaming.levels import BATCH_SIZE, BATCH_WITHIN_S, PartitionOf

log = logging.getLogger(__name__)


StopHook = Callable[[], Awaitable[None]]


def before_stop(app: faust.App) -> list[StopHook]:
    """What the stages want done on a graceful stop while the consumer, tables and producer
    still run (:class:`~pipelines.streaming.faust.worker.QuietWorker` awaits each, in
    order, before the app stops).
    Faust's own ``on_before_shutdown`` comes after the tables have stopped."""
    hooks: list[StopHook] | None = getattr(app, "_netquality_before_stop", None)
    if hooks is None:
        hooks = []
        app._netquality_before_stop = hooks  # type: ignore[attr-defined]
    return hooks


def batch_agent(
    app: faust.App,
    topic: faust.TopicT,
    name: str,
    handle: Callable[[EventBatch], Awaitable[Any]],
) -> None:
    """Declare agent ``name`` on ``topic``: batches of its events, in order, to ``handle``."""

    async def agent(stream: faust.StreamT) -> None:
        await run_batches(
            OrderedIntake(app, name), stream, handle, size=BATCH_SIZE, within=BATCH_WITHIN_S
        )

    agent.__name__ = agent.__qualname__ = name.replace("-", "_")
    app.agent(topic, name=name)(agent)


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
    partition_of: PartitionOf | None = None,
    keep_decoded: int | None = None,
    peek: Any = None,
) -> ChangelogStates[Any]:
    """A changelog-backed table of states keyed like ``source``'s messages; ``partition_of``
    is the worker's one cache of room and region partitions (a new one when None);
    ``keep_decoded`` and ``peek`` as in :class:`ChangelogStates`."""
    if partition_of is None:
        partition_of = PartitionOf(settings.partitions)
    table = app.Table(
        name,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
    )
    return ChangelogStates(
        table,
        partition_of=partition_of.of_key,
        source_topic=source.get_topic_name(),
        dump=dump,
        load=load,
        keep_decoded=keep_decoded,
        peek=peek,
    )
