"""Rewrite the settings table in docs/settings.md from ``pipelines.config`` (the one source).

``python tools/settings_doc.py`` after adding a setting; ``--check`` exits 1 when the page is
stale (tests/unit/test_readme.py runs the check).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.config import settings_table

PAGE = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
BEGIN = "<!-- settings table: begin (tools/settings_doc.py) -->"
END = "<!-- settings table: end -->"


def table() -> str:
    """The Markdown table of every setting: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for env, default, doc in settings_table():
        shown = f"`{default}`" if default else "(unset)"
        rows.append(f"| `{env}` | {shown} | {doc.replace('|', '/')} |")
    return "\n".join(rows)


def rendered(text: str) -> str:
    """``text`` with the part between the markers replaced by the current table."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = PAGE.read_text()
    fresh = rendered(text)
    if "--check" in argv:
        if fresh != text:
            print(f"{PAGE} is stale: run `python tools/settings_doc.py`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
