"""``netquality demo`` renders every bundled dump with its participants' levels."""

from __future__ import annotations

import io

from rich.console import Console

from pipelines.demo import DUMPS, run_demo
from pipelines.live.view import level_bars


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


def test_offline_demo_draws_the_live_demo_bars():
    """One way to draw a level: the offline tables show the live view's bars."""
    buffer = io.StringIO()
    run_demo(Console(file=buffer, width=200, color_system=None))
    text = buffer.getvalue()
    assert level_bars(5).plain + " 5" in text or level_bars(0).plain + " 0" in text
    assert "▁" not in text  # the offline demo's old, different bar set
    assert [level_bars(level).plain for level in range(6)] == [
        "✕····", "▃····", "▃▄···", "▃▄▅··", "▃▄▅▆·", "▃▄▅▆▇"]
