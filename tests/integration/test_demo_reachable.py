"""``netquality demo`` run as a person runs it, piped into a log: it says where its servers
are, other commands find it by themselves while it runs, and its progress reaches the pipe
as it happens, not at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pipelines.demo_data import RTCSTATS
from pipelines.runtime.demo_env import env_path, read_env

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLI = [sys.executable, "-m", "pipelines.cli"]


def _wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, "the demo ended early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_piped_demo_is_found_by_other_commands(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env["NETQUALITY_STATE_DIR"] = str(tmp_path / "var")
    log = tmp_path / "demo.log"
    card = env_path(tmp_path / "var")
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [*CLI, "demo", "--rooms", "3", "--participants", "2-2", "--duration", "40"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )
    try:
        _wait_for(card.exists, 120, demo)
        endpoints = read_env(card)
        assert endpoints is not None and endpoints.pid == demo.pid
        printed = log.read_text()
        assert f"KAFKA_BOOTSTRAP_SERVERS={endpoints.kafka_bootstrap_servers}" in printed
        assert f"DATABASE_URL={endpoints.database_url}" in printed
        assert "source var/demo/env" in printed

        # Progress lines reach the pipe while the demo runs (every 5 s).
        _wait_for(lambda: "simulated " in log.read_text(), 30, demo)

        # `publish` with no KAFKA_BOOTSTRAP_SERVERS sends to the demo's broker.
        published = subprocess.run(
            [*CLI, "publish", "--format", "rtcstats", "--region", "eu1",
             str(RTCSTATS / "chrome-relay")],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )
        assert published.returncode == 0, published.stderr
        assert f"using the running demo's broker ({card})" in published.stderr
        assert "sent 13" in published.stderr

        # `alerts` follows the demo's topic instead of starting an empty broker.
        alerts = subprocess.Popen([*CLI, "alerts", "--from-beginning"], env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(8)
        alerts.terminate()
        out, err = alerts.communicate(timeout=30)
        assert "using the running demo's broker" in err
        assert f"following netquality.alerts.v1 on {endpoints.kafka_bootstrap_servers}" in out
        assert "does not exist" not in out + err
    finally:
        if demo.poll() is None:
            demo.wait(timeout=240)
    assert demo.returncode == 0, log.read_text()[-3000:]
    assert not card.exists()  # a stopped demo leaves no card to be found

    # Once it has stopped, a command no longer finds it and says what to do.
    done = subprocess.run([*CLI, "alerts"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert "no broker to read: start `netquality demo`" in done.stderr
    text = log.read_text()
    assert "\x1b[" not in text  # plain lines in a pipe, no cursor control
    assert text.count("simulated ") >= 3
