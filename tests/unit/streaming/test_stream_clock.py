"""Stream time: silence is judged where the stream is, not where the wall clock is."""

from __future__ import annotations

from pipelines.streaming.clock import StreamClock


def test_nothing_read_yet_means_no_time_at_all():
    assert StreamClock().now(1_000.0) == 0


def test_while_batches_arrive_the_clock_is_the_newest_produce_time():
    clock = StreamClock()
    wall = 10_000.0  # a backlog produced two minutes before we read it
    for produced in range(9_880_000, 9_890_000, 1_000):
        clock.observe(produced, wall)
        wall += 0.05
        assert clock.now(wall) - produced < 100  # never the 120 s the backlog is old


def test_when_nothing_arrives_the_wall_clock_takes_over():
    clock = StreamClock()
    clock.observe(5_000_000, wall_s=100.0)
    assert clock.now(100.0) == 5_000_000
    assert clock.now(112.5) == 5_012_500


def test_an_older_record_never_moves_the_clock_back():
    clock = StreamClock()
    clock.observe(5_000_000, wall_s=100.0)
    clock.observe(4_000_000, wall_s=101.0)
    assert clock.now(101.0) == 5_000_000
