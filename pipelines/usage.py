"""How every ``netquality`` command fails: one line a person can act on, never a traceback.

``netquality <command>: <what was wrong>; <what to do>`` on stderr, exit status 2 for usage
and input errors (argparse's own convention), 1 for "ran, but some input was rejected" and
for a server that cannot be reached.
Commands raise :class:`CommandError`; :func:`pipelines.cli.main` prints it. The checks here
run before a command reads anything, so a missing file or an unreachable broker is said
at once, not after a 30 s client timeout.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

from pipelines.adapters.sniff import DESCRIPTIONS, InputFormat, guess_format

SHOWN_ERRORS = 10
"""Bad input lines printed one by one before the rest are only counted: enough to see a
pattern, few enough that a wrong format does not scroll thousands of lines."""

BROKER_WAIT_S = 5.0
"""How long ``publish`` waits for a broker's TCP port before saying it is unreachable: a
local or same-region broker answers in milliseconds, so 5 s only ever delays a dead one."""

SNIFF_BYTES = 64 * 1024
"""Enough of an input to hold its first line (an rtcstats getstats line is ~10-40 KiB)."""


class CommandError(Exception):
    """What was wrong and what to do, in one line; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def input_paths(sources: Sequence[str]) -> list[Path | None]:
    """Each source as a readable file (``None`` for ``-``, stdin), or a :class:`CommandError`."""
    paths: list[Path | None] = []
    for source in sources:
        if source == "-":
            paths.append(None)
            continue
        path = Path(source)
        if not path.exists():
            raise CommandError(f"{source}: no such file; give an existing file, or - for stdin")
        if path.is_dir():
            raise CommandError(f"{source} is a directory; give one of the files in it")
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise CommandError(f"{source}: cannot read it ({exc.strerror})") from None
        paths.append(path)
    return paths


def check_format(name: str, head: bytes, fmt: InputFormat) -> None:
    """Refuse an input that plainly has another format, naming the ``--format`` to use."""
    guess = guess_format(head)
    if guess is None or guess == fmt:
        return
    fix = "drop --format" if guess == "samples" else f"add --format {guess}"
    raise CommandError(f"{name} looks like {DESCRIPTIONS[guess]}, not {DESCRIPTIONS[fmt]}: {fix}")


def head_of(path: Path | None, stdin: BinaryIO | None = None) -> bytes:
    """The first bytes of a file, or of stdin without consuming them (a peek)."""
    if path is not None:
        with path.open("rb") as stream:
            return stream.read(SNIFF_BYTES)
    stream = stdin or sys.stdin.buffer
    peek = getattr(stream, "peek", None)
    return peek(SNIFF_BYTES)[:SNIFF_BYTES] if peek is not None else b""


class ErrorLines:
    """Prints the first :data:`SHOWN_ERRORS` bad-input lines, then only counts the rest."""

    def __init__(self, err: TextIO, shown: int = SHOWN_ERRORS) -> None:
        self._err = err
        self._shown = shown
        self.count = 0

    def __call__(self, line: str) -> None:
        self.count += 1
        if self.count <= self._shown:
            print(line, file=self._err)

    def close(self) -> None:
        """The closing count of the lines not shown, if any."""
        hidden = self.count - self._shown
        if hidden > 0:
            print(f"... and {hidden} more skipped lines not shown", file=self._err)


def bootstrap_addresses(servers: str) -> list[tuple[str, int]]:
    """``"PLAINTEXT://a:9092,b:9093,[::1]:9092"`` as (host, port) pairs (port 9092 if none)."""
    addresses: list[tuple[str, int]] = []
    for listed in servers.split(","):
        server = listed.strip().rpartition("://")[2]
        if not server:
            continue
        if server.startswith("["):
            host, _, rest = server[1:].partition("]")
            port = rest.lstrip(":")
        else:
            host, _, port = server.rpartition(":") if ":" in server else (server, "", "")
        if not port.isdigit():
            raise CommandError(f"bad broker address {server!r} in KAFKA_BOOTSTRAP_SERVERS; "
                               "expected host:port[,host:port]")
        addresses.append((host, int(port)))
    if not addresses:
        raise CommandError("KAFKA_BOOTSTRAP_SERVERS is empty; set it to host:port of a broker")
    return addresses


def check_broker(
    servers: str,
    wait_s: float = BROKER_WAIT_S,
    connect: Callable[[tuple[str, int], float], object] = socket.create_connection,
) -> None:
    """A :class:`CommandError` unless some bootstrap server accepts a TCP connection in time."""
    deadline = time.monotonic() + wait_s
    reasons: list[str] = []
    for address in bootstrap_addresses(servers):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            reasons.append(f"{address[0]}:{address[1]}: no time left")
            continue
        try:
            connection = connect(address, remaining)
        except OSError as exc:
            reasons.append(f"{address[0]}:{address[1]}: {exc.strerror or exc}")
            continue
        getattr(connection, "close", lambda: None)()
        return
    raise CommandError(
        f"cannot reach a Kafka broker within {wait_s:g} s ({'; '.join(reasons)}); start one "
        "(`netquality demo` runs one and writes var/demo/env) or set KAFKA_BOOTSTRAP_SERVERS",
        status=1,
    )
