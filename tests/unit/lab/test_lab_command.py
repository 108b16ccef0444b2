"""``netquality lab`` refuses bad input with one line and no traceback, before starting anything."""

from __future__ import annotations

import pytest

from pipelines.cli import main


@pytest.mark.parametrize("argv, says", [
    (["--profile", "no-such-profile"], "unknown profile 'no-such-profile'"),
    (["--profile", "trace:norway-3g/nope"], "no trace"),
    (["--participants", "9"], "2 to 6 participants"),
    (["--video", "big"], "expected WIDTHxHEIGHT@FPS"),
    (["--video", "641x360@15"], "must be even"),
])
def test_bad_input_is_one_line(argv, says, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NETQUALITY_STATE_DIR", str(tmp_path))
    assert main(["lab", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netquality lab: ") and says in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing started, nothing written


def test_a_bad_json_timeline_says_where(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NETQUALITY_STATE_DIR", str(tmp_path / "state"))
    profile = tmp_path / "p.json"
    profile.write_text('{"duration_s": 30, "steps": [{"at": 0, "A": {"up": {"loss": 3}}}]}')
    assert main(["lab", "--profile", str(profile)]) == 2
    err = capsys.readouterr().err
    assert "step 1 A.up" in err and "loss must be within 0..1" in err


def test_a_configured_ingest_needs_its_broker(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NETQUALITY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["lab", "--profile", "clean", "--ingest-url", "http://127.0.0.1:9/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netquality lab: --ingest-url needs KAFKA_BOOTSTRAP_SERVERS")
    assert err.count("\n") == 1 and not any((tmp_path / "state").glob("*"))
