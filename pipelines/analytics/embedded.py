"""Find an embedded Postgres that another netquality process is running (a live demo, a sink).

``netquality report`` without ``DATABASE_URL`` reads the embedded Postgres under the state
dir. Starting a second postmaster on a data directory in use fails, so when one is already
running there, the report connects to it instead: its ``postmaster.pid`` says the port.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.runtime.postgres import HOST, SUPERUSER

DATABASE = "netquality"


def running_postgres_url(data_dir: Path) -> str | None:
    """URL of the live postmaster of ``data_dir``, ``None`` when none is running there.

    ``postmaster.pid`` lines (Postgres' ``pidfile.h``): 1 pid, 4 port, 6 listen address.
    """
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # alive, owned by another user (the unprivileged user Postgres runs as)
    except OSError:
        return None  # a stale file left by a crash
    host = lines[5].strip() if len(lines) > 5 and lines[5].strip() not in ("", "*") else HOST
    return f"postgresql+psycopg://{SUPERUSER}@{host}:{port}/{DATABASE}"


def report_state_dir(state_dir: Path) -> Path:
    """The state directory whose embedded Postgres a report reads when DATABASE_URL is unset.

    ``netquality demo`` keeps its own servers under ``<state dir>/demo``; after a demo run the
    analyst wants that history, so the demo's directory wins when its Postgres is running or
    is the more recently used of the two (by the data directory's modification time).
    """
    own, demo = state_dir / "postgres", state_dir / "demo" / "postgres"
    for candidate in (demo, own):
        if running_postgres_url(candidate) is not None:
            return candidate.parent
    if not demo.is_dir():
        return state_dir
    if not own.is_dir() or demo.stat().st_mtime >= own.stat().st_mtime:
        return demo.parent
    return state_dir
