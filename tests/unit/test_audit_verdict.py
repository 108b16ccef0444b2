"""The audit wrapper never calls an unchecked dependency set clean."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "nq_audit", Path(__file__).parents[2] / "tools" / "audit.py"
)
assert _spec and _spec.loader
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)


def test_all_skipped_is_not_checked_even_though_pip_audit_says_no_vulnerabilities():
    report = {"dependencies": [{"name": "aiokafka", "skip_reason": "Dependency not found on "
                                "PyPI and could not be audited: aiokafka (0.14.0)"}]}  # fmt: skip
    result, lines = audit.verdict(report)
    assert result == "NOT CHECKED"
    assert "0 checked, 1 could not be checked" in lines[0]


def test_vulnerabilities_win_over_skips():
    report = {"dependencies": [
        {"name": "a", "skip_reason": "x: y"},
        {"name": "b", "version": "1.0", "vulns": [{"id": "PYSEC-1", "fix_versions": ["1.1"]}]},
    ]}  # fmt: skip
    result, lines = audit.verdict(report)
    assert result == "VULNERABLE"
    assert any("PYSEC-1" in line and "1.1" in line for line in lines)


def test_clean_only_when_everything_was_checked():
    assert audit.verdict({"dependencies": [{"name": "a", "vulns": []}]})[0] == "CLEAN"
    assert audit.verdict({"dependencies": []})[0] == "NOT CHECKED"
