"""Child processes that cannot outlive us: the one way the runtime starts a server.

Every embedded server (broker, Postgres) is started in its own session and process group, asks
the kernel to signal it when our process dies (``PR_SET_PDEATHSIG``, Linux only), and is stopped
by an ``atexit`` hook if the caller forgets. Stopping is "polite signal, then SIGKILL to the
whole group after a timeout", so nothing is left behind even if the server ignores the signal.

Caveat of ``PR_SET_PDEATHSIG``: the kernel fires it when the *thread* that forked the child
exits, so start servers from a thread that lives as long as they should (the main thread).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the small race is accepted; callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _deathsig_preexec(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn that makes the child receive ``sig`` when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c") or "libc.so.6"
    libc = ctypes.CDLL(libc_name, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        # Runs in the child after fork and after any setuid (so the setting is not cleared).
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


class ManagedProcess:
    """One child server process: own process group, dies with us, stopped politely."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        death_signal: signal.Signals = signal.SIGKILL,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.death_signal = death_signal
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs (it is also its process-group id)."""
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        """Whether the child is still running."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    def start(self) -> None:
        """Spawn the child, appending its stdout/stderr to ``log_path``."""
        if self.alive():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        extra: dict[str, object] = {}
        if self.user is not None:
            # Drop root's supplementary groups too, not only the uid/gid.
            extra = {"user": self.user, "group": _primary_group(self.user), "extra_groups": []}
        with self.log_path.open("ab") as logf:
            logf.write(f"--- starting {self.name}: {' '.join(self.argv)}\n".encode())
            logf.flush()
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                # Only prctl/getppid/kill run in the forked child: no locks, safe with threads.
                preexec_fn=_deathsig_preexec(self.death_signal),  # noqa: PLW1509
                **extra,  # type: ignore[arg-type]
            )
        atexit.register(self.stop)
        log.info("started %s pid=%s log=%s", self.name, self._proc.pid, self.log_path)

    def stop(self, timeout: float = 15.0) -> None:
        """Send the stop signal, wait up to ``timeout`` s, then SIGKILL the whole group."""
        atexit.unregister(self.stop)
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s pid=%s ignored %s; killing its group", self.name, proc.pid,
                            self.stop_signal.name)
        # Whatever is left in the group (e.g. Postgres backends after a crash) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.info("stopped %s pid=%s rc=%s", self.name, proc.pid, proc.returncode)

    def wait(self, timeout: float) -> int:
        """Wait for a short-lived child (e.g. initdb) to finish; its exit code."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._proc.wait(timeout)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _primary_group(user: str) -> int:
    import pwd  # noqa: PLC0415 (POSIX only, needed only when switching users)

    return pwd.getpwnam(user).pw_gid


class EmbeddedServer:
    """What every embedded server shares: one managed process, its log, start/stop, ``with``.

    Subclasses set ``log_name`` and implement :meth:`start` and :meth:`stop`.
    """

    log_name = "server.log"

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self._process: ManagedProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.log_dir / self.log_name

    def running(self) -> bool:
        return self._process is not None and self._process.alive()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process (polite signal, then SIGKILL after ``timeout``)."""
        if self._process is not None:
            self._process.stop(timeout)
            self._process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
