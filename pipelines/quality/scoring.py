"""Metric -> 0..100 score functions (pure, scalar, allocation-free).

Each returns ``None``-free floats; callers decide whether a metric was measured at all.
The formulas and their sources are documented on :class:`~pipelines.quality.thresholds.Thresholds`.
"""

from __future__ import annotations

from math import sqrt

from pipelines.quality.thresholds import Thresholds


def loss_effect(fraction_lost: float, weight: float) -> float:
    """Points the loss takes off a packet score: weight x loss% (LiveKit's packet-loss effect,
    the E-model's Ie_eff reduced to a line)."""
    return weight * fraction_lost * 100.0


def delay_effect(rtt_s: float, jitter_s: float, th: Thresholds) -> float:
    """Points the delay takes off a packet score: the simplified E-model delay impairment Id on
    the effective one-way delay RTT/2 + 2 x jitter + 10 ms (see ``Thresholds``)."""
    delay_ms = rtt_s * th.delay_rtt_share * 1000.0 + jitter_s * 2000.0 + th.delay_codec_ms
    if delay_ms <= th.delay_knee_ms:
        return delay_ms * th.delay_slope_low
    return (delay_ms - th.delay_offset_high_ms) * th.delay_slope_high


def loss_score(fraction_lost: float, weight: float) -> float:
    """Loss alone as a 0..100 score (what an event reports as the fractionLost level)."""
    score = 100.0 - loss_effect(fraction_lost, weight)
    return score if score > 0.0 else 0.0


def latency_score(rtt_s: float, jitter_s: float, th: Thresholds) -> float:
    """Delay alone as a 0..100 score (what an event reports as the latency level)."""
    score = 100.0 - delay_effect(rtt_s, jitter_s, th)
    return score if score > 0.0 else 0.0


def lower_loss_bound(lost: float, packets: float, z: float) -> float:
    """The one-sided lower confidence bound of a loss rate seen as ``lost`` of ``packets``.

    Wilson's score interval (Wilson 1927; Agresti & Coull 1998 for why it beats the normal
    approximation at small counts): the loss rate the packets prove, not the one they
    suggest. 1 of 12 proves ~3 %, 12 of 100 ~9 %, 120 of 1,000 ~11 %.
    """
    if packets <= 0.0:
        return 0.0
    p = lost / packets if lost < packets else 1.0
    z2n = z * z / packets
    centre = p + z2n / 2.0
    spread = z * sqrt(p * (1.0 - p) / packets + z2n / (4.0 * packets))
    bound = (centre - spread) / (1.0 + z2n)
    return bound if bound > 0.0 else 0.0


def bandwidth_score(capacity_bps: float, demand_bps: float, th: Thresholds) -> float:
    """Share of the demanded bitrate the network carries, as 0..100."""
    if demand_bps <= 0.0:
        return 100.0
    score = 100.0 * capacity_bps / (demand_bps * th.bandwidth_full_score_ratio)
    if score > 100.0:
        return 100.0
    return score if score > 0.0 else 0.0


def decay(value: float, elapsed_s: float, half_life_s: float) -> float:
    """Exponential decay of a remembered value (demand memory)."""
    if elapsed_s <= 0.0:
        return value
    return value * 0.5 ** (elapsed_s / half_life_s)
