"""The demo's address card: written, read back, trusted only while the demo is alive."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.runtime import Runtime
from pipelines.runtime.demo_env import DemoEndpoints, env_path, read_env, running_demo, write_env


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something listens on (the card check only needs the TCP port to answer)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _card(state_dir: Path, port: int, pid: int) -> DemoEndpoints:
    path = env_path(state_dir)
    card = DemoEndpoints(f"127.0.0.1:{port}", "postgresql+psycopg://u@127.0.0.1:5/db?a=1&b=2",
                         pid, path, "http://127.0.0.1:8000/?token=x y")
    write_env(path, card)
    return card


def test_card_round_trips_and_sources_in_a_shell(tmp_path: Path, listener: int) -> None:
    card = _card(tmp_path, listener, os.getpid())
    assert read_env(card.path) == card
    shell = subprocess.run(
        ["sh", "-c", f". {card.path} && echo \"$KAFKA_BOOTSTRAP_SERVERS|$DATABASE_URL\""],
        capture_output=True, text=True, check=True,
    )
    assert shell.stdout.strip() == f"{card.kafka_bootstrap_servers}|{card.database_url}"
    assert running_demo(tmp_path) == card


def test_a_dead_demo_or_a_closed_broker_is_not_found(tmp_path: Path, listener: int) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    _card(tmp_path, listener, int(gone.stdout))
    assert running_demo(tmp_path) is None  # its process has exited
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    _card(tmp_path, closed, os.getpid())
    assert running_demo(tmp_path) is None  # nothing listens on its broker port
    assert running_demo(tmp_path / "elsewhere") is None


def test_runtime_uses_a_running_demo_instead_of_starting_servers(
    tmp_path: Path, listener: int
) -> None:
    card = _card(tmp_path, listener, os.getpid())
    settings = Settings().with_overrides(state_dir=tmp_path, kafka_bootstrap_servers=None,
                                         database_url=None)
    with Runtime(settings, find_demo=True) as runtime:
        assert runtime.broker is None and runtime.postgres is None
        assert runtime.settings.kafka_bootstrap_servers == card.kafka_bootstrap_servers
        assert runtime.settings.database_url == card.database_url
    assert Runtime(settings).find_demo is False  # the worker and the sink never look
