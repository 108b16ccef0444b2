"""The impairment relay: a symmetric UDP pair between two browsers, on an asyncio loop.

Each browser is told (through its remote description, see :mod:`pipelines.lab.sdp`) that the
other one lives at one of the relay's two ports. The relay learns each browser's address from
the packets it receives and forwards everything (STUN, DTLS, SRTP alike, untouched) out of the
other port, after the impairment model of that direction (:class:`~.impairment.Chain`) decided
when, or whether, the packet leaves. The loop runs in its own thread so a synchronous caller
(the browser driver) can change impairments while packets flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines.lab.impairment import Chain

Address = tuple[str, int]
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
"""Kernel buffer per relay socket. The default 208 KiB holds well under a second of two
video streams; on a CPU-contended host (load 8 on 2 cores while recording the corpus) the
relay can be descheduled that long, and the kernel then drops datagrams (``RcvbufErrors``
in /proc/net/snmp rose by 241 during one run), which would read as network loss. Linux caps
the request at ``net.core.rmem_max``."""


@dataclass(slots=True)
class _Side:
    """One of the relay's two ports: the browser behind it and how to send to it."""

    transport: asyncio.DatagramTransport | None = None
    peer: Address | None = None
    port: int = 0
    received: int = 0
    outbox: deque[tuple[float, bytes]] = field(default_factory=deque)
    """Packets on their way to this side's browser, in departure order."""
    timer: asyncio.TimerHandle | None = None


class _SideProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_packet: Callable[[bytes, Address], None]) -> None:
        self.on_packet = on_packet

    def datagram_received(self, data: bytes, addr: Address) -> None:  # type: ignore[override]
        self.on_packet(data, addr)


class PairRelay:
    """Relays between side ``a`` and side ``b``; ``a_to_b`` impairs what ``a``'s browser sends."""

    def __init__(self, loop: asyncio.AbstractEventLoop, a_to_b: Chain, b_to_a: Chain,
                 host: str = "127.0.0.1") -> None:
        self.loop = loop
        self.host = host
        self.sides = {"a": _Side(), "b": _Side()}
        self.chains = {"a": a_to_b, "b": b_to_a}

    async def open(self) -> None:
        for name in ("a", "b"):
            transport, _ = await self.loop.create_datagram_endpoint(
                lambda name=name: _SideProtocol(lambda d, addr: self._received(name, d, addr)),
                local_addr=(self.host, 0),
            )
            sock = transport.get_extra_info("socket")
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
            side = self.sides[name]
            side.transport = transport
            side.port = transport.get_extra_info("sockname")[1]

    @property
    def ports(self) -> tuple[int, int]:
        return self.sides["a"].port, self.sides["b"].port

    def close(self) -> None:
        for side in self.sides.values():
            if side.transport is not None:
                side.transport.close()

    def _received(self, name: str, data: bytes, addr: Address) -> None:
        side = self.sides[name]
        side.peer = addr  # symmetric: the latest source is where replies go
        side.received += 1
        now = self.loop.time()
        leaves = self.chains[name].admit(now, len(data))
        if leaves is None:
            return
        other = self.sides["b" if name == "a" else "a"]
        other.outbox.append((leaves, data))
        if other.timer is None:
            self._deliver(other)

    def _deliver(self, side: _Side) -> None:
        """Send what is due, in order, and wake up for the next one. One timer per side,
        because the loop's timer heap does not keep equal deadlines in order."""
        side.timer = None
        now = self.loop.time()
        while side.outbox and side.outbox[0][0] <= now:
            _, data = side.outbox.popleft()
            if side.transport is not None and side.peer is not None:
                side.transport.sendto(data, side.peer)
        if side.outbox:
            side.timer = self.loop.call_at(side.outbox[0][0], self._deliver, side)


class RelayThread:
    """An event loop in a daemon thread that hosts any number of :class:`PairRelay`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="lab-relay",
                                        daemon=True)
        self.relays: list[PairRelay] = []

    def __enter__(self) -> RelayThread:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def pair(self, a_to_b: Chain, b_to_a: Chain) -> PairRelay:
        """Open a relay pair (blocking until its ports are bound)."""
        relay = PairRelay(self.loop, a_to_b, b_to_a)
        asyncio.run_coroutine_threadsafe(relay.open(), self.loop).result(timeout=10)
        self.relays.append(relay)
        return relay

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the relay's loop (so link changes never race a packet) and wait."""
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(timeout=5)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        for relay in self.relays:
            self.loop.call_soon_threadsafe(relay.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
