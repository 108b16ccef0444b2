"""Stand-ins for Faust's message and event, with the reference counting the intake relies on
(shared by the intake and held-batch tests; the real broker path is tests/faults)."""

from __future__ import annotations

from dataclasses import dataclass

from faust.types import TP


@dataclass
class Message:
    tp: TP
    offset: int
    refcount: int = 1
    acked: bool = False

    def incref(self) -> None:
        self.refcount += 1

    def decref(self) -> None:
        self.refcount -= 1


@dataclass
class Event:
    message: Message

    def ack(self) -> None:
        """Faust's ``Event.ack``: drop a reference; the last one marks the message acked
        (``on_final_ack``), which is what lets its offset be committed. A bare ``decref``
        to 0 does not."""
        self.message.decref()
        if self.message.refcount == 0:
            self.message.acked = True
