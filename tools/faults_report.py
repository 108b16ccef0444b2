"""Print the figures of the last fault-suite run (var/faults/*.json) as Markdown lines.

docs/reliability.md quotes this output; re-run it after ``make faults`` to update the page.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

SKIP = {"test", "finished_at", "rss_mb_series"}


def main(directory: str = "var/faults") -> int:
    files = sorted(Path(directory).glob("*.json"))
    if not files:
        print(f"no figures in {directory}: run `make faults` (or `make test`) first")
        return 1
    for path in files:
        figures = json.loads(path.read_text())
        when = datetime.fromtimestamp(figures["finished_at"], UTC).strftime("%Y-%m-%d %H:%M UTC")
        runs = path.with_suffix(".runs.jsonl")
        count = len(runs.read_text().splitlines()) if runs.exists() else 1
        name, scale = figures["test"], figures["scale"]
        print(f"- **{name}** ({scale}, {when}; passing runs recorded: {count}):")
        body = ", ".join(f"{k} {v}" for k, v in sorted(figures.items()) if k not in SKIP)
        print(f"  {body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
