"""Audit the installed dependency set for known vulnerabilities, and say honestly what was checked.

``pip-audit`` reports "No known vulnerabilities found" even when it could check nothing (a
restricted network where PyPI's per-version JSON API or OSV is unreachable: every dependency
is then "skipped"). This wrapper reads pip-audit's JSON and prints one of three verdicts:

* ``VULNERABLE``   - known vulnerabilities found: exit 1 (CI goes red);
* ``CLEAN``        - every dependency was checked and none is vulnerable: exit 0;
* ``NOT CHECKED``  - some or all dependencies could not be checked: exit 0 by default, so an
  unreachable advisory service does not turn CI red, but the output never claims "clean";
  ``--strict`` makes it exit 2.

Usage: ``python tools/audit.py [--strict] [--service pypi|osv]`` (``make audit``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import sysconfig
from typing import Any


def verdict(report: dict[str, Any]) -> tuple[str, list[str]]:
    """(verdict, lines) from pip-audit's JSON report."""
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    checked = len(deps) - len(skipped)
    lines = [f"{len(deps)} dependencies: {checked} checked, {len(skipped)} could not be checked"]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            lines.append(f"  {dep['name']} {dep.get('version', '')}: {vuln['id']} (fix: {fixes})")
    if vulnerable:
        return "VULNERABLE", lines
    if skipped or not deps:
        reasons = sorted({d["skip_reason"].split(":")[0] for d in skipped})
        lines.append("  reasons: " + ("; ".join(reasons) or "no dependencies listed"))
        return "NOT CHECKED", lines
    return "CLEAN", lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="exit 2 when not all were checked")
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv"])
    args = parser.parse_args(argv)
    site = sysconfig.get_paths()["purelib"]
    command = [sys.executable, "-m", "pip_audit", "--path", site, "-s", args.service,
               "--skip-editable", "-f", "json", "--progress-spinner", "off"]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"audit: NOT CHECKED - pip-audit could not run against {args.service}: {tail}")
        return 2 if args.strict else 0
    result, lines = verdict(report)
    print(f"audit ({args.service}): {result}")
    print("\n".join(lines))
    if result == "VULNERABLE":
        return 1
    if result == "NOT CHECKED":
        print("audit: the advisory service was not reachable for these; this is NOT a clean bill")
        return 2 if args.strict else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
