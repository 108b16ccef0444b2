"""The browser script and the Python adapter map the same getStats reports to the same samples.

Every report of the bundled real dumps (Chrome, Firefox, Safari; jitsi rtcstats, each
decompressed exactly as the Python replay sees it) plus the standalone snapshots goes through
``pipelines/adapters/getstats.py`` and through ``netquality-stats.js`` under node; the JS
output must decode with the contract's decoder into the very same sample.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipelines.adapters import rtcstats, sample_from_report, samples_from_rtcstats_file
from pipelines.contracts import StatsSample, decode_stats
from pipelines.demo_data import RTCSTATS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SCRIPT = (
    Path(__file__).resolve().parents[3] / "pipelines" / "ingest" / "static" / "netquality-stats.js"
)
NODE = shutil.which("node")

RUNNER = """
const api = require(process.argv[1]);
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(({ report, identity }) => {
    try { return api.sampleFromReport(report, identity); }
    catch (e) { return { error: String(e.message) }; }
  });
  process.stdout.write(JSON.stringify(out));
});
"""

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _identity(**kw: Any) -> dict[str, Any]:
    """kwargs of sample_from_report in the JS option names."""
    names = {"room_sid": "roomSid", "participant_sid": "participantSid", "region": "region",
             "seq": "seq", "connection_state": "connectionState", "timestamp": "timestamp"}
    return {names[k]: v for k, v in kw.items()}


def _rtcstats_cases(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict, StatsSample]]:
    """(report JSON, identity, Python sample) for every getstats line of every dump."""
    cases: list[tuple[str, dict, StatsSample]] = []

    def recording(report: Any, **kw: Any) -> StatsSample:
        sample = sample_from_report(report, **kw)
        cases.append((json.dumps(report), _identity(**kw), sample))
        return sample

    monkeypatch.setattr(rtcstats, "sample_from_report", recording)
    for dump in sorted(RTCSTATS.iterdir()):
        list(samples_from_rtcstats_file(dump))
    return cases


def _run_js(cases: list[tuple[str, dict]]) -> list[dict]:
    payload = "[" + ",".join(
        f'{{"report":{report},"identity":{json.dumps(identity)}}}' for report, identity in cases
    ) + "]"
    done = subprocess.run(
        [NODE, "-e", RUNNER, str(SCRIPT)], input=payload.encode(), capture_output=True,
        timeout=60, check=True,
    )
    return json.loads(done.stdout)


def test_js_and_python_build_the_same_sample_from_every_real_report(monkeypatch):
    cases = _rtcstats_cases(monkeypatch)
    identity = {"room_sid": "RM01", "participant_sid": "PA01", "region": "eu1", "seq": 3}
    for snapshot in sorted((FIXTURES / "getstats").glob("*.json")):
        raw = snapshot.read_text(encoding="utf-8")
        cases.append((raw, _identity(**identity), sample_from_report(json.loads(raw), **identity)))
    assert len(cases) > 150  # 175 getstats lines in the dumps plus the snapshots
    js = _run_js([(report, ident) for report, ident, _ in cases])
    assert len(js) == len(cases)
    with_tracks = 0
    for (_, ident, expected), got in zip(cases, js, strict=True):
        assert "error" not in got, (ident, got)
        assert decode_stats(json.dumps(got)) == expected, ident
        with_tracks += bool(expected.outbound or expected.inbound)
    assert with_tracks > 100  # the comparison covers real media, not just empty samples


def test_js_maps_connection_states_and_report_shapes_like_python():
    from pipelines.adapters import map_connection_state

    states = ["new", "checking", "connecting", "connected", "completed", "disconnected",
              "failed", "closed"]
    script = f"""
const api = require({json.dumps(str(SCRIPT))});
const states = {json.dumps(states)}.map(api.mapConnectionState);
let unknown = null;
try {{ api.mapConnectionState("bogus"); }} catch (e) {{ unknown = "threw"; }}
const stats = {{id: "T", type: "transport", timestamp: 1000.5}};
const shapes = [
  api.normalizeReport(new Map([["T", stats]])),
  api.normalizeReport([stats]),
  api.normalizeReport([{{key: "T", value: stats}}]),
  api.normalizeReport({{T: stats}}),
];
const halves = [api.reportTimestamp({{a: {{timestamp: 2.5}}}}),
                api.reportTimestamp({{a: {{timestamp: 3.5}}}})];
console.log(JSON.stringify({{states, unknown, shapes, halves}}));
"""
    done = subprocess.run([NODE, "-e", script], capture_output=True, timeout=30, check=True)
    out = json.loads(done.stdout)
    assert out["states"] == [map_connection_state(s) for s in states]
    assert out["unknown"] == "threw"
    assert all(shape == {"T": {"id": "T", "type": "transport", "timestamp": 1000.5}}
               for shape in out["shapes"])
    assert out["halves"] == [round(2.5), round(3.5)]  # Python rounds halves to even
