"""The per-key logic a room stage drives: one protocol for rollups and alerts, rooms and regions.

A room stage (one keyed stream, a table of states, a timer) is the same for every kind of
state it keeps; what differs is the pure logic per key, a room or a region. That logic is
shaped like bytewax's ``StatefulBatchLogic`` (``on_batch``, ``on_notify``, ``notify_at``,
``on_eof``, ``snapshot``, and the builder that resumes from a snapshot), but over *stream
time* (ms, the partition's event-time clock that the stage keeps), never the wall clock:

* :meth:`KeyLogic.apply`: records of the key, in the order read (``on_batch``);
* :meth:`KeyLogic.advance`: the partition's stream time moved with no record of the key
  (``on_notify``): close a quiet room's minutes, fire a sustained alert's transition;
* :meth:`KeyLogic.due_at`: the lowest stream time at which :meth:`~KeyLogic.advance` can
  emit (``notify_at``), so a stage need visit only keys with something due;
* :meth:`KeyLogic.at_stop`: what a graceful stop publishes as it stands (``on_eof``);
* :meth:`KeyLogic.is_idle`: the key may be deleted (bytewax's ``DISCARD``);
* :meth:`KeyLogic.snapshot` and :meth:`LogicKind.restore`: the table value and back.

Which stream time a stage hands a key is its clock policy: see docs/architecture.md, "The
room stage" (the partition's own, never one clock for all partitions). The stream time handed
to :meth:`~KeyLogic.advance` may go back (a clock following the wall clock while idle, then the
stream again): the states ignore a lower one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

In_contra = TypeVar("In_contra", contravariant=True)
"""What the key's stream carries (a level event, a room minute, a room summary)."""
Out_co = TypeVar("Out_co", covariant=True)
"""What the key emits (minutes, alert events, summaries)."""

NOW = 0
"""A :meth:`KeyLogic.due_at` of work already due: at any stream time (a stream time is ms
since the epoch; 0 is a clock that has read nothing, at which stages advance nothing)."""


class KeyLogic(Protocol[In_contra, Out_co]):
    """One key's state behind the stage's calls (implementations: ``rollups.logic``,
    ``alerting.logic``)."""

    def apply(self, records: Sequence[In_contra], stream_time: int) -> Sequence[Out_co]:
        """Fold the key's records, read when the partition's clock said ``stream_time``;
        return what they made due. Applying a batch in two parts emits what applying it
        whole does."""
        ...

    def advance(self, stream_time: int) -> Sequence[Out_co]:
        """The partition's clock reached ``stream_time`` with nothing more for this key."""
        ...

    def due_at(self) -> int | None:
        """No output from :meth:`advance` before this stream time (:data:`NOW`: any);
        ``None``: only a record can give the key work."""
        ...

    def at_stop(self, stream_time: int) -> Sequence[Out_co]:
        """What is still open, as it stands at ``stream_time``, for a graceful stop; the
        state is left as it is (a restart finishes it and replaces these outputs)."""
        ...

    def is_idle(self) -> bool:
        """Nothing held that a later record could need: the table entry may be deleted."""
        ...

    def snapshot(self) -> bytes:
        """The table value; :meth:`LogicKind.restore` of it continues exactly as this."""
        ...


class LogicKind(Protocol[In_contra, Out_co]):
    """How a stage makes a key's logic: for its first record, or from its table bytes (the
    builder of bytewax's ``stateful``, with the resume state)."""

    def key_of(self, record: In_contra) -> str:
        """The key (room or region) a record belongs to."""
        ...

    def start(self, record: In_contra, stream_time: int) -> KeyLogic[In_contra, Out_co]:
        """A new key's logic for its first ``record``, read at ``stream_time``; the stage
        then applies the record to it."""
        ...

    def restore(self, data: bytes) -> KeyLogic[In_contra, Out_co]:
        """The logic whose :meth:`KeyLogic.snapshot` was ``data``."""
        ...
