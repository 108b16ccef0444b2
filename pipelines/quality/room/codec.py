"""Table encodings of the room stages' states, and what their peeks share.

Both stages keep one msgpack value per room and region in a changelog-backed table
(exact-size bytes: :class:`~pipelines.quality.packing.ExactEncoder`). Their sweeps peek at a
room's bytes through a *view*: a Struct with the state's fields in the same order, the
costly ones left as :class:`msgspec.Raw` slices. :func:`check_view` makes a view that no
longer matches its state fail at import rather than misread the bytes.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from pipelines.quality.packing import ExactEncoder

S = TypeVar("S")

EMPTY_MAP = b"\x80"
"""msgpack of ``{}``: a :class:`msgspec.Raw` field compared to it needs no decoding."""
EMPTY_ARRAY = b"\x90"
"""msgpack of ``[]``."""
NIL = b"\xc0"
"""msgpack of ``None``."""

_encoder = ExactEncoder()


class TableCodec(Generic[S]):
    """Bytes for a changelog-backed table of ``kind`` values, and back."""

    __slots__ = ("_decoder",)

    def __init__(self, kind: type[S]) -> None:
        self._decoder = msgspec.msgpack.Decoder(kind)

    def dump(self, state: S) -> bytes:
        """Compact bytes for the table."""
        return _encoder.encode(state)

    def load(self, data: bytes) -> S:
        """Inverse of :meth:`dump`."""
        return self._decoder.decode(data)


def check_view(view: type[msgspec.Struct], state: type[msgspec.Struct], module: str) -> None:
    """Refuse to import ``module`` when ``view`` no longer has ``state``'s fields (a field
    added to the state would shift every later field of the view)."""
    if view.__struct_fields__ != state.__struct_fields__:
        raise ImportError(f"{state.__name__} fields changed: update {module}")
