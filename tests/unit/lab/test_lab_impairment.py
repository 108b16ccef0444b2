"""The lab's impairment model, packet by packet: no sockets, no browser, seeded.

Tolerances are binomial: with n packets and loss p the count of losses has standard deviation
sqrt(n p (1 - p)); each check allows more than 4 of them, so a correct model fails less than
once in 10^4 seeds, and the seeds are fixed anyway.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.lab.impairment import CLEAN, Chain, Impairment, ImpairmentError, Link

MTU = 1200


def send(link: Link, n: int, interval_s: float = 0.001, size: int = MTU,
         start: float = 0.0) -> list[float | None]:
    return [link.admit(start + i * interval_s, size) for i in range(n)]


def test_a_clean_link_delivers_everything_at_once():
    link = Link(CLEAN, random.Random(1))
    assert send(link, 100) == [i * 0.001 for i in range(100)]
    assert link.counts.delivered == 100 and link.counts.lost == 0


@pytest.mark.parametrize("loss", [0.01, 0.08, 0.3])
def test_independent_loss_matches_the_rate(loss):
    n = 20_000
    link = Link(Impairment(loss=loss), random.Random(7))
    lost = sum(1 for d in send(link, n) if d is None)
    assert abs(lost - n * loss) < 4.5 * math.sqrt(n * loss * (1 - loss))
    assert link.counts.lost == lost


def test_gilbert_elliott_keeps_the_rate_and_makes_bursts():
    n, loss, burst = 50_000, 0.05, 4.0
    link = Link(Impairment(loss=loss, burst=burst), random.Random(3))
    dropped = [d is None for d in send(link, n)]
    rate = sum(dropped) / n
    runs, length = [], 0
    for d in dropped:
        if d:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    # Bursts are correlated, so the rate varies more than binomially: 20 % relative slack.
    assert abs(rate - loss) < 0.2 * loss
    assert abs(sum(runs) / len(runs) - burst) < 0.15 * burst


def test_delay_adds_to_every_packet():
    link = Link(Impairment(delay_ms=150), random.Random(1))
    out = send(link, 50, interval_s=0.02)
    assert all(d == pytest.approx(i * 0.02 + 0.150) for i, d in enumerate(out))


def test_jitter_spreads_delay_but_never_reorders():
    link = Link(Impairment(delay_ms=50, jitter_ms=30), random.Random(5))
    out = send(link, 2000, interval_s=0.002)
    assert all(d is not None for d in out)
    assert out == sorted(out)  # type: ignore[type-var]
    extra = [d - i * 0.002 - 0.050 for i, d in enumerate(out)]  # type: ignore[operator]
    assert min(extra) >= 0 and max(extra) > 0.030


def test_a_rate_cap_limits_throughput_and_drops_from_the_tail():
    """2 Mbit/s offered into a 500 kbit/s cap for 10 s: ~500 kbit/s leaves, the rest drops."""
    rate_kbps = 500
    link = Link(Impairment(rate_kbps=rate_kbps, queue_ms=200), random.Random(1))
    interval = MTU * 8 / 2_000_000
    n = int(10 / interval)
    out = send(link, n, interval_s=interval)
    delivered = [d for d in out if d is not None]
    carried_kbps = len(delivered) * MTU * 8 / 1000 / (delivered[-1] - delivered[0])
    assert carried_kbps == pytest.approx(rate_kbps, rel=0.02)
    assert link.counts.queue_drops > 0.7 * n
    # The queue never holds more than its bound: no packet waits beyond 200 ms + one packet.
    waits = [d - i * interval for i, d in enumerate(out) if d is not None]
    assert max(waits) <= 0.200 + MTU * 8 / (rate_kbps * 1000) + 1e-9


def test_a_rate_cap_below_the_offered_rate_does_nothing():
    link = Link(Impairment(rate_kbps=5000), random.Random(1))
    out = send(link, 1000, interval_s=0.01)  # ~1 Mbit/s offered
    assert link.counts.queue_drops == 0
    assert all(d - i * 0.01 < 0.002 for i, d in enumerate(out))  # type: ignore[operator]


def test_an_outage_drops_everything_and_the_link_recovers():
    link = Link(CLEAN, random.Random(1))
    link.set(Impairment(outage=True))
    assert send(link, 100) == [None] * 100
    link.set(CLEAN)
    assert None not in send(link, 100, start=1.0)
    assert link.counts.outage_drops == 100 and link.counts.delivered == 100


def test_a_chain_is_the_sum_of_its_links():
    up = Link(Impairment(delay_ms=30), random.Random(1))
    down = Link(Impairment(delay_ms=70), random.Random(2))
    assert Chain(up, down).admit(1.0, MTU) == pytest.approx(1.100)
    down.set(Impairment(outage=True))
    assert Chain(up, down).admit(2.0, MTU) is None


def test_the_same_seed_makes_the_same_decisions():
    imp = Impairment(loss=0.1, burst=3, delay_ms=20, jitter_ms=10, rate_kbps=800)
    assert send(Link(imp, random.Random(42)), 3000) == send(Link(imp, random.Random(42)), 3000)


@pytest.mark.parametrize("bad", [{"loss": 1.5}, {"loss": -0.1}, {"delay_ms": -1},
                                 {"rate_kbps": 0}, {"burst": 0.5}, {"jitter_ms": math.inf},
                                 {"speed": 3}, {"loss": "lots"}])
def test_bad_settings_are_refused_with_a_reason(bad):
    with pytest.raises(ImpairmentError):
        Impairment.from_json(bad)


impairments = st.builds(
    Impairment,
    loss=st.floats(0, 1), burst=st.floats(1, 10), delay_ms=st.floats(0, 500),
    jitter_ms=st.floats(0, 100), rate_kbps=st.one_of(st.none(), st.floats(10, 10_000)),
    queue_ms=st.floats(0, 1000), outage=st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(impairments, min_size=1, max_size=4), seed=st.integers(0, 2**16),
       sizes=st.lists(st.integers(50, 1500), min_size=20, max_size=200))
def test_packets_leave_in_order_never_early_and_every_one_is_counted(steps, seed, sizes):
    link = Link(steps[0], random.Random(seed))
    departures = []
    for i, size in enumerate(sizes):
        link.set(steps[i * len(steps) // len(sizes)])
        now = i * 0.003
        d = link.admit(now, size)
        if d is not None:
            assert d >= now
            departures.append(d)
    assert departures == sorted(departures)
    c = link.counts
    assert c.packets == len(sizes) == c.delivered + c.lost + c.queue_drops + c.outage_drops
