"""``netquality demo`` renders every bundled dump with its participants' levels."""

from __future__ import annotations

import io

from rich.console import Console

from pipelines.demo import DUMPS, run_demo, signal_bars


def test_demo_shows_every_bundled_dump_and_its_participants():
    buffer = io.StringIO()
    status = run_demo(Console(file=buffer, width=200, color_system=None))
    text = buffer.getvalue()
    assert status == 0
    for dump in DUMPS.iterdir():
        assert dump.name in text
    assert "video.send.bandwidth" in text  # the p2p call's ramp-up is explained
    assert "connectionState" in text  # the failed call is explained


def test_demo_without_dumps_says_so(tmp_path):
    buffer = io.StringIO()
    assert run_demo(Console(file=buffer), tmp_path / "missing") == 1
    assert "no dumps" in buffer.getvalue()


def test_signal_bars_grow_with_level():
    assert signal_bars(0) == "✕"
    assert [len(signal_bars(level)) for level in range(1, 6)] == [2, 3, 4, 5, 6]
