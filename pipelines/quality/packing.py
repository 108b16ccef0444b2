"""msgpack for table values, in bytes objects of exactly their size.

``msgspec.msgpack.Encoder.encode`` writes into a 512-byte buffer that it shrinks to the
output at the end; for outputs of ~380-512 bytes CPython's allocator keeps the whole block
(it only moves a block that shrinks below 3/4 of it). A participant's state is ~340 bytes
of msgpack, so each of the table's copies held ~456 bytes instead of ~380: ~80 bytes per
participant for nothing (tracemalloc, docs/performance.md, memory). Encoding into a reused
buffer and copying out the exact bytes is also faster (1.3-1.6 us against 2.4 us per state).
"""

from __future__ import annotations

import threading
from typing import Any

import msgspec

KEEP_BUFFER_BYTES = 1 << 20
"""A buffer that grew past this (a region's state can be MiBs) is dropped after use."""


class ExactEncoder:
    """Like ``msgspec.msgpack.Encoder().encode``, returning exact-size bytes; thread-safe
    (one buffer per thread)."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._local = threading.local()

    def encode(self, obj: Any) -> bytes:
        local = self._local
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = bytearray()
        self._encoder.encode_into(obj, buf)
        out = bytes(buf)
        if len(out) > KEEP_BUFFER_BYTES:
            local.buf = None
        return out


_state_encoder = ExactEncoder()


def dump_state_exact(state: Any) -> bytes:
    """:func:`~pipelines.quality.dump_state`'s bytes, exact-size: what the participants table
    stores. (Here, not in ``state.py``: that file is an input of the compiled core, and
    editing it would switch the engine to pure Python until the next build.)"""
    return _state_encoder.encode(state)
