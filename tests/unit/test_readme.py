"""The README works as written: its shell commands run, its links resolve, its lists are current.

Every command in a ```bash block of README.md either runs here (in a scratch directory with
the checkout's ``tests/``, ``schemas/`` and ``pipelines/`` and the installed ``netquality``, no
broker or database in the environment) and must exit 0 without a traceback, or is in
:data:`SKIPPED` with the reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

SKIPPED = {
    "make demo": "runs until Ctrl-C; tests/integration/test_demo_reachable.py runs the demo",
    "make test": "the whole suite, this test included",
    ".venv/bin/netquality worker": "a service: runs until SIGTERM (tests/integration)",
    ".venv/bin/netquality sink": "a service: runs until SIGTERM (tests/integration)",
    ".venv/bin/netquality db upgrade": "starts an embedded Postgres (tests/integration/"
                                       "test_migrations.py)",
    ".venv/bin/netquality db partitions --days 7": "starts an embedded Postgres "
                                                   "(tests/integration/test_migrations.py)",
    ".venv/bin/netquality alerts --from-beginning": "follows the topic until Ctrl-C; needs a "
                                                    "running demo or broker",
    "NETQUALITY_ALERT_WEBHOOK_URLS=https://hooks.example.com/netquality "
    "NETQUALITY_ALERT_WEBHOOK_SECRET=s3cret .venv/bin/netquality notify":
        "a service posting to an example host (tests/integration/test_alert_delivery.py)",
    ".venv/bin/netquality report --region eu-west --format table": "needs a demo's data in "
                                                                   "Postgres",
    "KAFKA_BOOTSTRAP_SERVERS=kafka:9092 .venv/bin/netquality publish samples.jsonl":
        "needs a broker at kafka:9092",
    ".venv/bin/netquality publish --format rtcstats --region eu1 "
    "pipelines/demo_data/rtcstats/chrome-relay": "needs a running demo (test_demo_reachable.py)",
    "cat samples.jsonl | .venv/bin/netquality publish --no-envelope -": "needs a broker",
    "NETQUALITY_INGEST_TOKENS=s3cret KAFKA_BOOTSTRAP_SERVERS=kafka:9092 "
    ".venv/bin/netquality ingest": "a service, needs a broker at kafka:9092",
    "curl -s http://127.0.0.1:8100/v1/samples -H 'Authorization: Bearer s3cret' "
    "-H 'Content-Type: application/json' "
    "-d @schemas/examples/netquality.stats.v1/valid/minimal.json": "needs the ingest above",
    "NETQUALITY_WEB_TOKENS='s3cret-operator-token-0001=*' .venv/bin/netquality web":
        "a service: runs until SIGTERM (tests/integration/test_web_api.py)",
    "curl -H 'Authorization: Bearer s3cret-operator-token-0001' "
    "http://127.0.0.1:8000/api/regions": "needs the web service above",
    ".venv/bin/netquality lab --profile rate-cap": "two real Chromium calls for a minute "
                                                   "(tests/integration/test_lab_live.py)",
}
"""Command -> why it is not run here (and where it is tested instead)."""

PENDING_PAGES: dict[str, str] = {}
"""Linked pages that other work adds; every other link must resolve."""


def readme_commands(text: str = README) -> list[str]:
    """Each command of each ```bash block: continuations joined, comments dropped."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(re.sub(r"\s+", " ", command))
    return commands


def test_every_skipped_command_is_still_in_the_readme() -> None:
    commands = readme_commands()
    assert [c for c in SKIPPED if c not in commands] == []
    assert len(commands) > len(SKIPPED)  # most commands do run


def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    """In README order (later commands read what earlier ones wrote, like samples.jsonl), in a
    directory that looks like a checkout after `make`: tests/, schemas/, pipelines/ and
    .venv/bin/netquality (the one installed with this interpreter)."""
    for name in ("tests", "schemas", "pipelines"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "netquality").symlink_to(
        Path(sys.executable).parent / "netquality")
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env["NETQUALITY_STATE_DIR"] = str(tmp_path / "var")
    ran, failed = [], []
    for command in readme_commands():
        if command in SKIPPED:
            continue
        done = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300, check=False)
        ran.append(command)
        if done.returncode != 0 or "Traceback" in done.stderr:
            failed.append(f"{command}: exit {done.returncode}: {done.stderr[-600:]}")
    assert failed == []
    assert ".venv/bin/netquality --help" in ran and len(ran) >= 8
    assert (tmp_path / "levels.jsonl").stat().st_size > 0  # the scorer really scored


def test_readme_links_resolve() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local, "no links found: the pattern is wrong"
    missing = [t for t in local if not (ROOT / t).exists() and t not in PENDING_PAGES]
    assert missing == []


def test_layout_names_every_package() -> None:
    layout = README[README.index("## Layout"):]
    packages = sorted(p.parent.name for p in (ROOT / "pipelines").glob("*/__init__.py"))
    assert [p for p in packages if f"  {p}/" not in layout] == []


def test_settings_page_is_generated_from_the_code() -> None:
    done = subprocess.run([sys.executable, "tools/settings_doc.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_docs_links_resolve() -> None:
    """The pages moved out of the README link to each other and back relative to docs/."""
    missing = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path = (page.parent / target).resolve()
            if not path.exists() and str(path.relative_to(ROOT)) not in PENDING_PAGES:
                missing.append(f"{page.name}: {target}")
    assert missing == []
