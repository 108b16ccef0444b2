"""The running demo's address card, ``<state dir>/demo/env``, so other commands can find it.

``netquality demo`` starts its own broker and Postgres on free ports. It writes their
addresses here as shell ``export`` lines (``source var/demo/env`` points any shell or tool at
them) and removes the file when it stops. Commands that would otherwise start an empty
embedded server of their own (``alerts``, ``publish``, ``simulate``, ``web``, ``db``) read
the card first, but only trust it while the demo's process is alive and its broker answers:
a card left behind by a killed demo is ignored.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from pipelines.runtime.process import port_open

PID = "NETQUALITY_DEMO_PID"
KAFKA = "KAFKA_BOOTSTRAP_SERVERS"
DATABASE = "DATABASE_URL"
DASHBOARD = "NETQUALITY_DEMO_DASHBOARD"


@dataclass(frozen=True, slots=True)
class DemoEndpoints:
    """Where a running demo's servers listen, and which process owns them."""

    kafka_bootstrap_servers: str
    database_url: str
    pid: int
    path: Path
    dashboard: str = ""


def env_path(state_dir: Path | str) -> Path:
    """The card of the demo run under ``state_dir`` (the demo itself uses ``<it>/demo``)."""
    return Path(state_dir).absolute() / "demo" / "env"


def write_env(path: Path, endpoints: DemoEndpoints) -> None:
    """Write the card: a comment saying how to use it, then ``export`` lines."""
    values = {KAFKA: endpoints.kafka_bootstrap_servers, DATABASE: endpoints.database_url,
              PID: str(endpoints.pid), DASHBOARD: endpoints.dashboard}
    lines = [f"# netquality demo (pid {endpoints.pid}): `source {path}` points a shell at it;",
             "# netquality commands find it by themselves while it runs.",
             *(f"export {name}={shlex.quote(value)}" for name, value in values.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)  # the dashboard address carries the demo's web token


def read_env(path: Path) -> DemoEndpoints | None:
    """The card's endpoints, ``None`` when there is no card or it is incomplete."""
    try:
        text = path.read_text()
    except OSError:
        return None
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.removeprefix("export ").partition("=")
        if sep and not line.startswith("#"):
            values[name.strip()] = "".join(shlex.split(value)) if value else ""
    try:
        return DemoEndpoints(values[KAFKA], values[DATABASE], int(values[PID]), path,
                             values.get(DASHBOARD, ""))
    except (KeyError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def running_demo(state_dir: Path | str) -> DemoEndpoints | None:
    """The demo running under ``state_dir``: card present, process alive, broker answering."""
    demo = read_env(env_path(state_dir))
    if demo is None or not _alive(demo.pid):
        return None
    host, _, port = demo.kafka_bootstrap_servers.split(",")[0].rpartition(":")
    if not port.isdigit() or not port_open(host or "127.0.0.1", int(port), timeout=1.0):
        return None
    return demo
