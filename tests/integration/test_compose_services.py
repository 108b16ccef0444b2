"""The compose services, run as plain processes with the compose file's own environment.

No Docker engine exists here, so this is the closest check of docker-compose.yml: every
netquality service's ``command`` runs as ``netquality <command>`` with the shared
``x-netquality-env`` block. Only what a container network would provide differently is
replaced: broker and database addresses (the embedded ones), ports (free loopback ports),
the state directory, per-test topic names and group ids (the broker is shared by the test
session), and the rebalance timeout (Tansu joins groups only after it).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.config import Settings
from pipelines.runtime.process import ManagedProcess, free_port
from pipelines.testing import scripted_session

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _defaults(value: str) -> str:
    import re

    return re.sub(r"\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}", r"\1", value)


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _answers(port: int) -> bool:
    try:
        _metrics(port)
    except OSError:
        return False
    return True


def test_compose_services_run_as_processes_with_the_compose_environment(
    broker: str,
    db: Any,
    worker_settings: Settings,
    kafka_io: Any,
    tmp_path: Path,
    wait_until: Any,
    row_count: Any,
) -> None:
    compose = _compose()
    services = compose["services"]
    # Our services of the default profile (optional ones, like `notify`, need outside parts).
    ours = {
        name: s
        for name, s in services.items()
        if s.get("image", "").startswith("netquality") and not s.get("profiles")
    }
    env = {key: _defaults(str(value)) for key, value in compose["x-netquality-env"].items()}
    assert env["NETQUALITY_LOG_FORMAT"] == "json" and env["NETQUALITY_METRICS_PORT"] == "9100"
    overrides = worker_settings.with_overrides(
        database_url=db.url, sink_group=f"{worker_settings.app_id}-sink"
    ).as_env()
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=broker,
        DATABASE_URL=db.url,
        NETQUALITY_REBALANCE_TIMEOUT_S="3",
        # Fresh names (the fixture's topics have 4 partitions; compose asks for its own count).
        **{k: f"{v}-compose" for k, v in overrides.items()
           if k.startswith(("NETQUALITY_TOPIC", "NETQUALITY_APP", "NETQUALITY_SINK_GROUP"))},
    )

    def process(name: str, port: int | None = None) -> ManagedProcess:
        service_env = {k: _defaults(str(v)) for k, v in services[name]["environment"].items()}
        for key, value in service_env.items():
            if value.startswith("/run/secrets/"):  # a compose secret: the committed example
                secret = value.removeprefix("/run/secrets/")
                copy = tmp_path / "secrets" / secret
                copy.parent.mkdir(exist_ok=True)
                copy.write_text((ROOT / "deploy" / "secrets" / f"{secret}.example").read_text())
                service_env[key] = str(copy)
        child_env = {
            **os.environ,
            **service_env,
            **env,
            "NETQUALITY_STATE_DIR": str(tmp_path / name),
            "NETQUALITY_METRICS_PORT": str(port or 0),
            "NETQUALITY_WEB_HOST": "127.0.0.1",
            "NETQUALITY_WEB_PORT": str(free_port()),
        }
        for key in (k for k, v in service_env.items() if v.startswith(str(tmp_path))):
            child_env[key] = service_env[key]
        argv = [sys.executable, "-m", "pipelines.cli", *services[name]["command"]]
        return ManagedProcess(name, argv, log_path=tmp_path / f"{name}.log", env=child_env)

    # The one-shot service first, as `depends_on: service_completed_successfully` orders it.
    migrate = process("migrate")
    migrate.start()
    wait_until(lambda: not migrate.alive(), timeout=120, what="migrate to exit")
    assert migrate.returncode == 0, (tmp_path / "migrate.log").read_text()

    long_running = {name: free_port() for name in ours if name != "migrate"}
    assert set(long_running) == {"worker", "sink", "web"}
    started = {name: process(name, port) for name, port in long_running.items()}
    try:
        for proc in started.values():
            proc.start()
        for name, port in long_running.items():
            wait_until(lambda port=port: _answers(port), timeout=120, what=f"{name} /metrics")

        samples = scripted_session()
        kafka_io.produce(
            env["NETQUALITY_TOPIC_STATS"],
            [(s.participant_sid.encode(), _encode(s)) for s in samples],
        )
        wait_until(
            lambda: row_count(db.url, "level_changes") > 0, timeout=180, what="level rows"
        )
        wait_until(
            lambda: _value(_metrics(long_running["worker"]), "netquality_samples_total") > 0,
            timeout=30,
            what="worker metrics",
        )
        sink_metrics = _metrics(long_running["sink"])
        assert _value(sink_metrics, 'netquality_rows_written_total{table="level_changes"}') > 0
    finally:
        for proc in started.values():
            proc.stop(timeout=60)
    for name, proc in started.items():
        log_text = (tmp_path / f"{name}.log").read_text()
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{log_text[-3000:]}"
        entries = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
        assert entries, f"{name} wrote no JSON log lines:\n{log_text[-2000:]}"
        assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)


def _encode(sample: Any) -> bytes:
    from pipelines.contracts import encode

    return encode(sample)


def _value(exposition: str, series: str) -> float:
    """The value of one series in a Prometheus text exposition (0 when absent)."""
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


pytestmark = pytest.mark.timeout(400)
