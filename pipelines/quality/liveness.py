"""What the sweep needs of a stored participant state, read without decoding all of it.

The sweep visits every participant every few seconds but acts only on the silent ones. A
worker keeps most states as the msgpack bytes of its table (decoding all of them would cost
~1 KB of objects each), so it reads just ``seen_at``, ``interval``, ``stale`` and ``level``: the
other fields are skipped as raw slices, about half the cost of a full decode.

Lives apart from ``state.py`` on purpose: that module is a type input of the compiled core,
and this one is not used by it.
"""

from __future__ import annotations

import msgspec
from msgspec import Raw

from pipelines.quality.state import ParticipantState


class Liveness(msgspec.Struct, array_like=True, gc=False):
    """A :class:`ParticipantState` seen through its encoding: the sweep's fields, and the level
    (for the per-level gauge)."""

    room_sid: Raw
    participant_sid: Raw
    region: Raw
    seq: Raw
    timestamp: Raw
    seen_at: int
    level: int
    limited_by: Raw
    stale: bool
    outbound: Raw
    inbound: Raw
    audio_send: Raw
    audio_recv: Raw
    video_send: Raw
    video_recv: Raw
    interval: int = 0
    idle: Raw = Raw(b"\x90")
    paused: Raw = Raw(b"\x90")
    quiet: Raw = Raw(b"\xc2")
    cause: Raw = Raw(b"\xc0")
    uplink: Raw = Raw(b"\x80")


if Liveness.__struct_fields__ != ParticipantState.__struct_fields__:
    raise ImportError(f"ParticipantState fields changed: update {__name__}")

_decoder = msgspec.msgpack.Decoder(Liveness)


def load_liveness(data: bytes) -> Liveness:
    """``seen_at`` and ``interval`` of a state encoded by :func:`~pipelines.quality.dump_state`."""
    return _decoder.decode(data)
