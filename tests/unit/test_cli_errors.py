"""Every bad input a person can give a command: one line saying what and what to do, exit 2.

Each case runs the real ``netquality`` entry point as a subprocess (nothing is mocked: the
refused broker is a closed local port) and checks the exit status, the message and that no
traceback reached the terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipelines.demo_data import RTCSTATS
from pipelines.usage import SHOWN_ERRORS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DUMP = RTCSTATS / "chrome-relay"
CLOSED_PORT = "127.0.0.1:1"  # nothing listens on port 1: the connection is refused at once
SAMPLE_LINE = b'{"schema":"netquality.stats.v1","participantSid":"p1","roomSid":"r1"}\n'


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    status: int
    message: str
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    one_line: bool = True


DEEP = b"[" * 5000 + b"\n"
JUNK = b"not json at all\n" * (SHOWN_ERRORS + 40)

CASES = [
    Case("score a missing file", ["score", "/nonexistent.jsonl"], 2,
         "netquality score: /nonexistent.jsonl: no such file; give an existing file, or - for"),
    Case("publish a missing file", ["publish", "/nonexistent.jsonl"], 2,
         "netquality publish: /nonexistent.jsonl: no such file",
         env={"KAFKA_BOOTSTRAP_SERVERS": CLOSED_PORT}),
    Case("score a directory", ["score", str(RTCSTATS)], 2,
         "rtcstats is a directory; give one of the files in it"),
    Case("publish a directory", ["publish", "--format", "rtcstats", str(RTCSTATS)],
         2, "rtcstats is a directory", env={"KAFKA_BOOTSTRAP_SERVERS": CLOSED_PORT}),
    Case("5,000 nested [ as an rtcstats dump", ["score", "--format", "rtcstats", "{deep}"], 1,
         "deep:1: skipped: invalid_json: JSON is nested more than 64 deep",
         files={"deep": DEEP}, one_line=False),
    Case("5,000 nested [ as a getStats report", ["score", "--format", "getstats", "{deep}"], 1,
         "deep:1: skipped: invalid_json: JSON is nested more than 64 deep",
         files={"deep": DEEP}, one_line=False),
    Case("5,000 nested [ as samples", ["score", "{deep}"], 1,
         "deep:1: skipped: invalid_field: Expected `object`, got `array`", files={"deep": DEEP},
         one_line=False),
    Case("publish to an unreachable broker", ["publish", "--format", "rtcstats", str(DUMP)], 1,
         f"netquality publish: cannot reach a Kafka broker within 5 s ({CLOSED_PORT}: "
         "Connection refused)", env={"KAFKA_BOOTSTRAP_SERVERS": CLOSED_PORT}),
    Case("publish with no broker set", ["publish", "{s}"], 2,
         "netquality publish: set KAFKA_BOOTSTRAP_SERVERS (or --bootstrap-servers)",
         files={"s": SAMPLE_LINE}, env={"KAFKA_BOOTSTRAP_SERVERS": ""}),
    Case("an rtcstats dump without --format", ["score", str(DUMP)], 2,
         "netquality score: " + str(DUMP) + " looks like an rtcstats dump, not "
         "netquality.stats.v1 JSON lines: add --format rtcstats"),
    Case("publish an rtcstats dump without --format", ["publish", str(DUMP)], 2,
         "looks like an rtcstats dump, not netquality.stats.v1 JSON lines: add --format rtcstats",
         env={"KAFKA_BOOTSTRAP_SERVERS": CLOSED_PORT}),
    Case("samples given as rtcstats", ["score", "--format", "rtcstats", "{s}"], 2,
         "looks like netquality.stats.v1 JSON lines, not an rtcstats dump: drop --format",
         files={"s": SAMPLE_LINE}),
    Case("a getStats report as samples", ["score", str(FIXTURES / "getstats" / "first.json")],
         2, "looks like a getStats report, not netquality.stats.v1 JSON lines: add --format "
         "getstats"),
    Case("thousands of bad lines", ["score", "{junk}"], 1,
         "... and 40 more skipped lines not shown", files={"junk": JUNK}, one_line=False),
    Case("thresholds file missing", ["score", "--thresholds", "/nonexistent.json", "{s}"], 2,
         "netquality score: --thresholds /nonexistent.json: No such file or directory",
         files={"s": SAMPLE_LINE}),
    Case("an unknown command", ["frobnicate"], 2, "invalid choice: 'frobnicate'",
         one_line=False),
    Case("a bad participants range", ["demo", "--participants", "six"], 2,
         "invalid participants_range value: 'six'", one_line=False),
    Case("one room", ["simulate", "--rooms", "1", "--output", "-"], 2,
         "argument --rooms: 1 rooms: the scenario needs at least 2", one_line=False),
    Case("a negative duration", ["demo", "--duration", "-5"], 2,
         "argument --duration: -5: a duration is 0 (no limit) or more seconds", one_line=False),
    Case("simulate into a missing directory",
         ["simulate", "--output", "/nonexistent/x.jsonl", "--duration", "1"], 2,
         "netquality simulate: --output /nonexistent/x.jsonl: cannot write it (No such file or "
         "directory); give a writable file, - for stdout, or kafka"),
]


def _run(case: Case, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    args = list(case.args)
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content)
        args = [str(tmp_path / name) if a == "{" + name + "}" else a for a in args]
    env = {**os.environ, "NETQUALITY_STATE_DIR": str(tmp_path / "state"), **case.env}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_line_and_exit_status(case: Case, tmp_path: Path) -> None:
    done = _run(case, tmp_path)
    assert done.returncode == case.status, done.stderr
    assert case.message in done.stderr
    assert "Traceback" not in done.stderr
    if case.one_line:
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_many_bad_lines_print_a_capped_list_then_a_count(tmp_path: Path) -> None:
    done = _run(CASES[[c.name for c in CASES].index("thousands of bad lines")], tmp_path)
    lines = done.stderr.strip().splitlines()
    assert len([line for line in lines if ": skipped: invalid_json" in line]) == SHOWN_ERRORS
    assert lines[-2] == "... and 40 more skipped lines not shown"
    assert lines[-1].startswith("scored 0 samples") and "50 input lines skipped" in lines[-1]


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "--version"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.startswith("netquality ") and done.stdout.strip() != "netquality"


def test_broken_pipe_exits_quietly() -> None:
    done = subprocess.run(
        f"{sys.executable} -m pipelines.cli settings | head -1",
        shell=True, capture_output=True, text=True, check=False,
    )
    assert done.stdout.startswith("KAFKA_BOOTSTRAP_SERVERS") or done.stdout.count("\n") == 1
    assert done.stdout.count("\n") == 1
    assert done.stderr == ""
